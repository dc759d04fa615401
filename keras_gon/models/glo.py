"""Generative Latent Optimization (GLO), the paper's latent-optimisation baseline."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.models.conv_decoder_model import ConvDecoderModel
from keras_gon.models.latent_model import LatentModel
from keras_gon.resources import check_weights
from keras_gon.validation import check_number, check_positive_int


@keras.saving.register_keras_serializable(package="keras_gon")
class GLO(ConvDecoderModel, LatentModel):
    """A trainable latent per training example, optimised jointly with the decoder.

    Training data are `(images, indices)` pairs, `indices` (int, in
    `[0, num_examples)`) naming each image's row of the latent table (build
    them with `keras_gon.data.with_example_indices`). Each step updates the
    decoder with the compiled optimizer and the batch's latents with SGD on
    their own SSE: z_i <- z_i - latent_learning_rate * ∇z_i SSE(x_i, F(z_i))
    (from zeros, so the first visit is a GON-like gradient step; the rows of
    the table are not touched by the optimizer).

    A held-out image has no latent: `encode`, `evaluate` and `reconstruct`
    fit one from zeros with `inference_steps` Adam steps at
    `inference_learning_rate` on its SSE, the decoder frozen (in inference
    mode); each image's latent depends on that image only.

    Args:
        num_examples: number of training examples (rows of the latent table); required.
        latent_learning_rate: SGD step size of the training latents.
        inference_steps: gradient steps that fit a held-out latent.
        inference_learning_rate: Adam step size of those steps.
        Others: as `keras_gon.ConvAutoencoder`.
    """

    def __init__(
        self,
        decoder: ConvDecoder | dict | None = None,
        num_examples: int | None = None,
        latent_learning_rate: float = 1.0,
        inference_steps: int = 50,
        inference_learning_rate: float = 0.05,
        **kwargs,
    ):
        # === Config ===
        if num_examples is None:
            raise InputError(
                "GLO needs num_examples, the number of training images (one "
                "latent each): e.g. GLO(num_examples=len(x_train), ...)"
            )
        num_examples = check_positive_int(num_examples, "num_examples")
        inference_steps = check_positive_int(inference_steps, "inference_steps")
        latent_learning_rate = check_number(
            latent_learning_rate, "latent_learning_rate", minimum=0.0, strict_minimum=True
        )
        inference_learning_rate = check_number(
            inference_learning_rate, "inference_learning_rate", minimum=0.0, strict_minimum=True
        )
        # === Layers ===
        decoder = self.make_decoder(decoder, kwargs)
        super().__init__(image_shape=decoder.image_shape, latent_dim=decoder.latent_dim, **kwargs)
        self.decoder = decoder
        self.num_examples = num_examples
        self.latent_learning_rate = latent_learning_rate
        self.inference_steps = inference_steps
        self.inference_learning_rate = inference_learning_rate

        # === State ===
        check_weights(
            self.num_examples * self.latent_dim,
            f"GLO's latent table (num_examples={self.num_examples} x latent_dim={self.latent_dim})",
        )
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.latent_table = self.add_weight(
            shape=(self.num_examples, self.latent_dim),
            initializer="zeros",
            trainable=False,  # updated by its own SGD step (after_train_step)
            # every replica computes the same all-gathered update: keep the first's
            aggregation="only_first_replica",
            name="latent_table",
        )
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # --- training -------------------------------------------------------------

    def unpack_indices(self, data):
        """The example indices of a training batch, or a clear error."""
        return self.unpack_integers(
            data,
            "GLO trains on (images, indices) pairs: build them "
            "with keras_gon.data.with_example_indices",
        )

    def compute_terms(self, data, training=False) -> dict:
        """In training, the batch's rows of the latent table and each example's own
        gradient for them (a step that does not depend on the batch); else latents
        fitted to the images (`find_latents`)."""
        if not training:
            return super().compute_terms(data, training=False)
        images = self.unpack_images(data)
        indices = self.unpack_indices(data)
        latents = tf.gather(self.latent_table, indices)
        with tf.GradientTape() as latent_tape:
            latent_tape.watch(latents)
            terms = self.outer_terms(images, latents, training=True)
            total = tf.reduce_sum(terms["loss"])
        latent_gradient = tf.stop_gradient(latent_tape.gradient(total, latents))
        return {
            **terms,
            "latents": latents,
            "indices": indices,
            "latent_gradient": latent_gradient,
            "targets": images,
            "predictions": terms["reconstructions"],
        }

    def after_train_step(self, terms: dict) -> None:
        """z_i <- z_i - latent_learning_rate * ∇z_i SSE(x_i, F(z_i)) for the batch's rows."""
        indices = terms["indices"]
        updated = terms["latents"] - self.latent_learning_rate * terms["latent_gradient"]
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # every replica writes every replica's rows (the first replica's write is kept)
            indices = context.all_gather(indices, axis=0)
            updated = context.all_gather(updated, axis=0)
        self.latent_table.assign(
            tf.tensor_scatter_nd_update(self.latent_table, indices[:, None], updated)
        )

    def check_training_data(self, x, y=None, validation_data=None) -> None:
        """`fit` trains on `(images, indices)`: a dataset of pairs, or `x=images, y=indices`
        (its own rule: GLO's validation data may be images alone, or pairs)."""
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if not (isinstance(spec, tuple) and len(spec) >= 2 and spec[1].dtype.is_integer):
                raise InputError(
                    "GLO trains on (images, indices) pairs: build them with "
                    "keras_gon.data.with_example_indices"
                )
        elif x is not None:
            if y is None:
                raise InputError("GLO.fit needs y: the index of each training image")
            indices = np.asarray(y)
            if indices.dtype.kind not in "iu":
                raise InputError(f"GLO indices must be integers, got dtype {indices.dtype}")

    def integer_targets(self) -> tuple[str, str, int]:
        """The example indices are integers in [0, num_examples)."""
        return ("GLO example indices", "num_examples", self.num_examples)

    # --- held-out latents -------------------------------------------------------

    def decode_latents(self, latents, training=False):
        return self.decoder(latents, training=training)

    def encode_latents(self, images, training=False):
        """Latents fitted to `images` by `inference_steps` Adam steps, decoder frozen."""
        images = tf.cast(images, self.latent_dtype)
        zeros = tf.zeros((tf.shape(images)[0], self.latent_dim), self.latent_dtype)
        rate, beta_1, beta_2, epsilon = self.inference_learning_rate, 0.9, 0.999, 1e-8

        def step(i, z, m, v):
            with tf.GradientTape() as tape:
                tape.watch(z)
                total = tf.reduce_sum(self.outer_losses(images, z, training=False))
            g = tf.stop_gradient(tape.gradient(total, z))
            m = beta_1 * m + (1 - beta_1) * g
            v = beta_2 * v + (1 - beta_2) * tf.square(g)
            t = tf.cast(i + 1, z.dtype)
            m_hat = m / (1 - beta_1**t)
            v_hat = v / (1 - beta_2**t)
            return i + 1, z - rate * m_hat / (tf.sqrt(v_hat) + epsilon), m, v

        _, latents, _, _ = tf.while_loop(
            lambda i, *_: i < self.inference_steps,
            step,
            (tf.constant(0), zeros, zeros, zeros),
        )
        return tf.stop_gradient(latents)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_examples": self.num_examples,
                "latent_learning_rate": self.latent_learning_rate,
                "inference_steps": self.inference_steps,
                "inference_learning_rate": self.inference_learning_rate,
            }
        )
        return config

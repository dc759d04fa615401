"""Generative Latent Optimization (GLO), the paper's latent-optimisation baseline."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.models.baseline import DecoderBaseline


@keras.saving.register_keras_serializable(package="keras_gon")
class GLO(DecoderBaseline):
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
        num_examples: number of training examples (rows of the latent table).
        latent_learning_rate: SGD step size of the training latents.
        inference_steps: gradient steps that fit a held-out latent.
        inference_learning_rate: Adam step size of those steps.
        Others: as `keras_gon.ConvAutoencoder`.
    """

    def __init__(self, image_shape=(32, 32, 1), latent_dim=32, width=16, activation="elu",
                 normalization="layer", momentum=0.9, epsilon=1e-5, num_examples: int = 1,
                 latent_learning_rate: float = 1.0, inference_steps: int = 50,
                 inference_learning_rate: float = 0.05, **kwargs):
        if int(num_examples) < 1:
            raise InputError(f"num_examples must be a positive integer, got {num_examples}")
        if int(inference_steps) < 1:
            raise InputError(f"inference_steps must be >= 1, got {inference_steps}")
        for name, value in (("latent_learning_rate", latent_learning_rate),
                            ("inference_learning_rate", inference_learning_rate)):
            if not float(value) > 0:
                raise InputError(f"{name} must be > 0, got {value}")
        super().__init__(
            image_shape=image_shape, latent_dim=latent_dim, width=width, activation=activation,
            normalization=normalization, momentum=momentum, epsilon=epsilon, **kwargs,
        )
        # === Config ===
        self.num_examples = int(num_examples)
        self.latent_learning_rate = float(latent_learning_rate)
        self.inference_steps = int(inference_steps)
        self.inference_learning_rate = float(inference_learning_rate)

        # === State ===
        self.decoder.build((None, self.latent_dim))
        self.latent_table = self.add_weight(
            shape=(self.num_examples, self.latent_dim),
            initializer="zeros",
            trainable=False,  # updated by its own SGD step in train_step
            name="latent_table",
        )
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # --- training -------------------------------------------------------------

    def _unpack_indices(self, data):
        _, indices, _ = keras.utils.unpack_x_y_sample_weight(data)
        if indices is None or not indices.dtype.is_integer:
            raise InputError(
                "GLO trains on (images, indices) pairs: build them with "
                "keras_gon.data.with_example_indices"
            )
        return tf.reshape(tf.cast(indices, tf.int32), (-1,))

    def train_step(self, data):
        x = self._unpack_batch(data)
        indices = self._unpack_indices(data)
        latents = tf.gather(self.latent_table, indices)
        decoder_variables = self.decoder.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(latents)
            per_example = self.outer_losses(x, latents, training=True)
            loss = tf.reduce_mean(per_example)
            total = tf.reduce_sum(per_example)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, decoder_variables)
        # Gradient of each example's own loss: the step does not depend on the batch.
        latent_gradient = tape.gradient(total, latents)
        del tape
        self.optimizer.apply(gradients, decoder_variables)
        updated = latents - self.latent_learning_rate * latent_gradient
        self.latent_table.assign(
            tf.tensor_scatter_nd_update(self.latent_table, indices[:, None], updated)
        )
        return self._update_metrics(None, per_example)

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit` on `(images, indices)` (a dataset of pairs, or `x=images, y=indices`)."""
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
            if indices.size and (indices.min() < 0 or indices.max() >= self.num_examples):
                raise InputError(
                    f"GLO indices must be in [0, {self.num_examples}), got "
                    f"[{indices.min()}, {indices.max()}]"
                )
        return super().fit(x, y, *args, **kwargs)

    # --- held-out latents -------------------------------------------------------

    def infer_latents(self, images, training=False):
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

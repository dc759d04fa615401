"""The variational autoencoder baseline of the variational GON (paper Table 2)."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gon.distribute import is_distributed, scale_loss_for_replicas, step_logs
from keras_gon.errors import InputError
from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.layers.conv_encoder import ConvEncoder
from keras_gon.layers.reparameterization import Reparameterization
from keras_gon.models.gradient_origin import GradientOriginModel
from keras_gon import losses as gon_losses
from keras_gon.models.variational import VariationalMixin


@keras.saving.register_keras_serializable(package="keras_gon")
class VAE(VariationalMixin, keras.Model):
    """Variational autoencoder with the GON's decoder and a mirrored encoder.

    q(z|x) = N(μ, σ²) with [μ, log σ²] = E(x) (`keras_gon.layers.ConvEncoder`
    with 2 * latent_dim outputs, the decoder's widths in reverse), z = μ + σ ε
    (`keras_gon.layers.Reparameterization`), trained on the same per-example
    negative ELBO as `keras_gon.VariationalGON` (eq. 10, `losses.negative_elbo`)
    with the same decoder: the paper's Table 2 comparison, like for like. It
    is not a GON (z comes from the encoder, not from a gradient) but has
    the same API: `encode` (μ), `decode`, `reconstruct`, `sample`, and fit /
    evaluate report `loss`, `reconstruction_loss`, `kl_loss`, `bits_per_dim`.

    Example:

    ```python
    model = keras_gon.VAE(image_shape=(32, 32, 1), latent_dim=32, width=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(train_ds, validation_data=test_ds, epochs=5)   # ... val_bits_per_dim
    images = model.sample(64, seed=0)
    ```

    Args:
        image_shape, latent_dim, width, activation, normalization, momentum,
            epsilon: as in `keras_gon.GON` (encoder and decoder).
        likelihood, likelihood_stddev, kl_weight: as in
            `keras_gon.VariationalGON`.
        seed: seed of the posterior sampling.
        **kwargs: `keras.Model` options (`name`, ...).
    """

    # Input checks, shape checks of fit's data and the inference-function
    # cache do not depend on how a latent is found: the core's, shared.
    latent_dtype = GradientOriginModel.latent_dtype
    _unpack_batch = GradientOriginModel._unpack_batch
    _check_data_argument = GradientOriginModel._check_data_argument
    _check_inputs = GradientOriginModel._check_inputs
    _check_latents = GradientOriginModel._check_latents
    _inference_function = GradientOriginModel._inference_function
    compile_from_config = GradientOriginModel.compile_from_config

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (32, 32, 1),
        latent_dim: int = 32,
        width: int = 16,
        activation: str = "elu",
        normalization: str = "layer",
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        likelihood: str = "discretized_logistic",
        likelihood_stddev: float = 0.1,
        kl_weight: float = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        # === Layers ===
        decoder = ConvDecoder(
            image_shape=image_shape,
            latent_dim=latent_dim,
            width=width,
            activation=activation,
            normalization=normalization,
            momentum=momentum,
            epsilon=epsilon,
            output_log_scale=gon_losses.likelihood_parameters(likelihood) == 2,
            dtype=kwargs.get("dtype"),  # a reloaded mixed-precision model computes as saved
            name="decoder",
        )
        encoder = ConvEncoder(
            image_shape=decoder.image_shape,
            output_dim=2 * decoder.latent_dim,
            width=decoder.width,
            activation=activation,
            normalization=normalization,
            momentum=decoder.momentum,
            epsilon=decoder.epsilon,
            dtype=kwargs.get("dtype"),
            name="encoder",
        )
        reparameterization = Reparameterization(
            seed=seed, dtype=kwargs.get("dtype"), name="reparameterization"
        )
        super().__init__(**kwargs)
        self.encoder = encoder
        self.reparameterization = reparameterization
        self.decoder = decoder

        # === Config ===
        self.image_shape = decoder.image_shape
        self.latent_dim = decoder.latent_dim
        self.width = decoder.width
        self.activation = activation
        self.normalization = normalization
        self.momentum = decoder.momentum
        self.epsilon = decoder.epsilon
        self.seed = seed
        self._init_variational(likelihood, likelihood_stddev, kl_weight)

        # === State ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = [keras.metrics.Mean(name=name) for name in self.metric_terms]
        self._inference_functions = {}
        self.build()

    @property
    def input_spec_shape(self):
        return self.image_shape

    def build(self, input_shape=None):
        """Creates every weight; all shapes are known from the config."""
        if not self.encoder.built:
            self.encoder.build((None, *self.image_shape))
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.built = True

    # --- graph-level encoder and decoder ------------------------------------------

    def posterior(self, images, training=False):
        """(μ, log σ²) of q(z|x), each (batch, latent_dim)."""
        mean, log_variance = tf.split(self.encoder(images, training=training), 2, axis=-1)
        return mean, log_variance

    def encode_latents(self, images, training=False):
        """Graph-level encoder: μ of q(z|x) (no input checks)."""
        return self.posterior(images, training=training)[0]

    def decode_latents(self, latents, training=False, inner_pass=False):
        """Graph-level decoder: images F(z) in [0, 1] (`inner_pass` is accepted for the
        GON's signature)."""
        return self.output_images(self.decoder(latents, training=training))

    def sample_latents(self, count, seed):
        """z ~ N(0, I), (count, latent_dim), from an integer seed (graph-level, e.g. for export)."""
        seed = tf.stack([tf.cast(seed, tf.int32), 0])
        return tf.random.stateless_normal((count, self.latent_dim), seed, dtype=self.latent_dtype)

    def call(self, inputs, training=None):
        """Reconstruction F(z) of a batch, z = μ at inference (what `predict` returns)."""
        mean, log_variance = self.posterior(inputs, training=training)
        latents = self.reparameterization([mean, log_variance], training=training)
        return self.decode_latents(latents, training=training)

    def elbo_terms(self, data, training=False):
        """Per-example -ELBO terms of a batch, with one z ~ q(z|x) (also at evaluation)."""
        mean, log_variance = self.posterior(data, training=training)
        latents = self.reparameterization([mean, log_variance], training=training, sample=True)
        outputs = self.decoder(latents, training=training)  # with the log-scale, if any
        return self.elbo_losses(data, outputs, mean, log_variance)

    # --- Keras training hooks -------------------------------------------------------

    def train_step(self, data):
        x = self._unpack_batch(data)
        with tf.GradientTape() as tape:
            terms = self.elbo_terms(x, training=True)
            loss = tf.reduce_mean(terms["loss"])
            if self.losses:
                loss = loss + tf.add_n([tf.cast(l, loss.dtype) for l in self.losses])
            # mean / replicas under a tf.distribute strategy, as the GON's step
            scaled_loss = self.optimizer.scale_loss(scale_loss_for_replicas(loss))
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(terms)

    def test_step(self, data):
        return self._update_metrics(self.elbo_terms(self._unpack_batch(data), training=False))

    def _update_metrics(self, terms):
        # Per-example values: the epoch mean weighs every example equally.
        self.loss_tracker.update_state(terms["loss"])
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name])
        return step_logs({m.name: m.result() for m in self.metrics})

    @property
    def metrics(self):
        return [self.loss_tracker, *self.term_trackers]

    def compile(self, optimizer="adam", *, loss=None, jit_compile=None, **kwargs):
        """As `keras.Model.compile`; the loss is the -ELBO. XLA as for the GON:
        on by default (`None`) on one device, off under a `tf.distribute` strategy."""
        if loss is not None:
            raise InputError("VAE.compile() takes no loss: its loss is the negative ELBO")
        if jit_compile is None:
            jit_compile = not is_distributed(self)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def fit(self, x=None, *args, callbacks=None, validation_data=None, **kwargs):
        """`keras.Model.fit`, stopping cleanly on a non-finite loss (`TerminateOnNaN`)."""
        self._check_data_argument(x, validation_data)
        callbacks = list(callbacks or [])
        if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks):
            callbacks.append(keras.callbacks.TerminateOnNaN())
        return super().fit(
            x, *args, callbacks=callbacks, validation_data=validation_data, **kwargs
        )

    def evaluate(self, x=None, *args, **kwargs):
        """`keras.Model.evaluate`, refusing data of the wrong shape with a clear error."""
        self._check_data_argument(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` (reconstructions), refusing data of the wrong shape."""
        self._check_data_argument(x)
        return super().predict(x, *args, **kwargs)

    # --- inference API ----------------------------------------------------------------

    def reset_inference_functions(self) -> None:
        """Drops the traced `encode`/`decode`/... functions (traced again on next use)."""
        self._inference_functions.clear()

    def encode(self, images):
        """μ of q(z|x) for `images` (batch, H, W, C) in [0, 1] or uint8: (batch, latent_dim)."""
        x = self._check_inputs(images)
        return self._inference_function("encode", lambda x: self.encode_latents(x))(x)

    def decode(self, latents):
        """F(latents) at inference: images (batch, H, W, C) in [0, 1]."""
        z = self._check_latents(latents)
        return self._inference_function("decode", lambda z: self.decode_latents(z))(z)

    def reconstruct(self, images):
        """F(μ(x)) at inference: encode then decode in one graph."""
        x = self._check_inputs(images)
        return self._inference_function("reconstruct", lambda x: self(x, training=False))(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "latent_dim": self.latent_dim,
                "width": self.width,
                "activation": self.activation,
                "normalization": self.normalization,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                **self._variational_config(),
                "seed": self.seed,
            }
        )
        return config

"""The variational autoencoder baseline of the variational GON (paper Table 2)."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.layers.reparameterization import Reparameterization
from keras_gon.models.conv_decoder_model import ConvDecoderModel
from keras_gon.models.latent_model import LatentModel
from keras_gon.models.variational import VariationalMixin


@keras.saving.register_keras_serializable(package="keras_gon")
class VAE(ConvDecoderModel, VariationalMixin, LatentModel):
    """Variational autoencoder with the GON's decoder and a mirrored encoder.

    q(z|x) = N(μ, σ²) with [μ, log σ²] = E(x) (`keras_gon.layers.ConvEncoder`
    with 2 * latent_dim outputs, the decoder's widths in reverse), z = μ + σ ε
    (`keras_gon.layers.Reparameterization`), trained on the same per-example
    negative ELBO as `keras_gon.VariationalGON` (eq. 10, `losses.negative_elbo`)
    with the same decoder: the paper's Table 2 comparison, like for like. It
    is not a GON (z comes from the encoder, not from a gradient) but has
    the same API: `encode` (μ), `decode`, `reconstruct`, `sample`, and fit /
    evaluate report `loss`, `reconstruction_loss`, `kl_loss` and `bits_per_dim`
    (or `negative_elbo_nats`, see `keras_gon.losses.LIKELIHOODS`).

    Example:

    ```python
    vae = keras_gon.VAE(latent_dim=32, width=16)      # the same decoder as the VariationalGON
    vae.compile(optimizer="adam")
    vae.fit(train_ds, epochs=5)
    mean = vae.encode(x)                              # μ of q(z|x)
    ```

    Args:
        decoder: a `ConvDecoder` or its config, or (by default) built from the
            decoder options given flat, as in `keras_gon.GON`; the encoder
            mirrors it.
        encoder: "conv" (the mirrored `ConvEncoder`, the paper's baseline) or
            "linear" (`keras_gon.layers.LinearEncoder`: [μ, log σ²] an affine
            map of the image, the class of encoder a variational GON's is).
        likelihood, likelihood_stddev, kl_weight, prior: as in `keras_gon.VariationalGON`.
        **kwargs: the decoder options, `seed` (of the posterior sampling),
            `outer_target` and `keras.Model` options (`name`, ...).
    """

    def __init__(
        self,
        decoder: ConvDecoder | dict | None = None,
        encoder: str = "conv",
        likelihood: str = "discretized_logistic",
        likelihood_stddev: float = 0.1,
        kl_weight: float = 1.0,
        prior: str = "standard",
        **kwargs,
    ):
        self.set_likelihood(likelihood, likelihood_stddev)  # (the metric trackers need it)
        # === Layers ===
        decoder = self.make_variational_decoder(decoder, kwargs)
        encoder_layer = self.make_encoder(encoder, decoder, 2 * decoder.latent_dim)
        reparameterization = Reparameterization(
            seed=kwargs.get("seed"), dtype=kwargs.get("dtype"), name="reparameterization"
        )
        super().__init__(image_shape=decoder.image_shape, latent_dim=decoder.latent_dim, **kwargs)
        self.encoder = encoder_layer
        self.reparameterization = reparameterization
        self.decoder = decoder
        self.init_kl_weight(kl_weight)
        self.init_prior(prior)
        self.build()

    def build(self, input_shape=None):
        """Creates every weight; all shapes are known from the config."""
        if not self.encoder.built:
            self.encoder.build((None, *self.image_shape))
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.built = True

    # --- graph-level encoder and decoder ------------------------------------------

    def posterior(self, images, training=False):
        """(μ, log σ²) of q(z|x), each (batch, latent_dim).

        With spatial latents (fig. 10a) the encoder's output is a flattened k x k map
        with 2c channels: μ is its first c channels and log σ² its last c, at each position.
        """
        outputs = self.encoder(images, training=training)
        k = self.decoder.latent_map_size
        if k == 1:
            mean, log_variance = tf.split(outputs, 2, axis=-1)
            return mean, log_variance
        maps = tf.reshape(outputs, (-1, k * k, 2 * self.decoder.latent_map_shape[-1]))
        mean, log_variance = tf.split(maps, 2, axis=-1)
        return (
            tf.reshape(mean, (-1, self.latent_dim)),
            tf.reshape(log_variance, (-1, self.latent_dim)),
        )

    def encode_latents(self, images, training=False):
        """Graph-level encoder: μ of q(z|x) (no input checks)."""
        return self.posterior(images, training=training)[0]

    def decode_latents(self, latents, training=False):
        """Graph-level decoder: images F(z) in [0, 1]."""
        return self.output_images(self.decoder(latents, training=training))

    def elbo_terms(self, data, training=False, target=None):
        """Per-example -ELBO terms of a batch, with one z ~ q(z|x) (also at evaluation)."""
        mean, log_variance = self.posterior(data, training=training)
        latents = self.reparameterization([mean, log_variance], training=training, sample=True)
        outputs = self.likelihood_outputs(latents, training=training)  # logits or log-scale
        terms = self.elbo_losses(
            data if target is None else target,
            outputs,
            mean,
            log_variance,
            logits=self.likelihood_takes_logits,
        )
        return {
            **terms,
            "latents": latents,
            "predictions": self.likelihood_images(outputs),
            "targets": data if target is None else target,
        }

    def compute_terms(self, data, training=False) -> dict:
        """The -ELBO of the batch (eq. 10): the encoder's posterior, one sample, the decoder."""
        images = self.unpack_images(data)
        return self.elbo_terms(images, training=training, target=self.unpack_target(data, images))

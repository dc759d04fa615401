"""The variational Gradient Origin Network (paper §3.3)."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.errors import InputError
from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.layers.dense import pytorch_dense
from keras_gon.layers.reparameterization import Reparameterization
from keras_gon.models.conv_decoder_model import ConvDecoderModel
from keras_gon.models.gradient_origin import GradientOriginModel
from keras_gon.models.variational import VariationalMixin

DEFAULT_STEP_SIZE = 1.0 / 64
"""The variational GON's default step: z = -(1/64) ∇z0 Σ_batch L_i = -(1/64) ∇z0 L_i per
example, the authors' latent (their inner loss is the batch mean, at batch 64) without its
dependence on the batch. With step 1 the latents are 64x larger and feed the linear maps to
μ and log σ² directly: training diverged in the first epoch here (benchmarks/REPRODUCTION.md)."""

ORIGIN_PRIOR_VARIANCE = 2.0
"""z0 ~ N(0, 2I): the origin as a noisy observation of z ~ N(0, I) (paper §3.1)."""


@keras.saving.register_keras_serializable(package="keras_gon")
class VariationalGON(ConvDecoderModel, VariationalMixin, GradientOriginModel):
    """Variational GON: a GON whose F starts with a Gaussian posterior (§3.3).

    F(z) maps the latent z through two Dense layers to μ and log σ², draws
    z' = μ + σ ε (`keras_gon.layers.Reparameterization`; z' = μ at
    inference) and decodes z' with the convolutional decoder. The latent of
    x is the origin gradient (eq. 9)

        z = -∇z0 [ -ELBO(x; F(z0)) - log N(z0; 0, 2I) ],  z0 = 0,

    where -ELBO = -log p(x|z') + β KL(N(μ, σ²) || N(0, I)) (eq. 10), and F is
    trained on the -ELBO at z through that gradient. The prior term's
    gradient z0 / 2 is zero at z0 = 0, but not with `origin_stddev` > 0 or
    after the first of `num_steps`. Sampling needs no encoder: decode
    z' ~ N(0, I) (`sample`).

    fit/evaluate report `loss` (β-weighted), `inner_loss` (the bracket above
    at the origin), `reconstruction_loss`, `kl_loss` and `bits_per_dim`
    (-ELBO / (D ln 2) with β = 1, D = pixels x channels). The outer ELBO
    samples z' ~ q at evaluation too: a one-sample Monte Carlo bound.

    Example:

    ```python
    model = keras_gon.VariationalGON(latent_dim=32)   # 8-bit likelihood, step 1/64
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    history = model.fit(train_ds, validation_data=test_ds, epochs=5)
    print(history.history["val_bits_per_dim"][-1])
    images = model.sample(64, seed=0)                 # z ~ N(0, I), one decoder pass
    ```

    Args:
        decoder: a `ConvDecoder` or its config, or (by default) built from the
            decoder options given flat, as in `keras_gon.GON`.
        likelihood: p(x|z), one of `keras_gon.losses.LIKELIHOODS`:
            "discretized_logistic" (default; 256 grey levels, real bits/dim),
            "bernoulli" (binarised images), "bce" (the authors' cross-entropy
            on grey levels, reported in nats) or "gaussian" (fixed
            standard deviation `likelihood_stddev`, nats).
        likelihood_stddev: standard deviation of the Gaussian likelihood.
        kl_weight: β, the weight of the KL term in the training loss (see
            `keras_gon.callbacks.KLWarmup`); bits_per_dim always uses 1.
        prior: what `sample` draws z from: "standard" (N(0, I), the paper's) or
            "fitted" (a normal fitted to the aggregate posterior of the training
            images at the end of `fit`, `fit_latent_statistics`).
        **kwargs: options of `GradientOriginModel` (`num_steps`,
            `step_size`: 1/64 by default here, see `DEFAULT_STEP_SIZE`;
            `detach`, `origin_stddev`, `inner_batch_reduction`,
            `seed`, ...) except the losses, and `keras.Model` (`name`, ...).
    """

    def __init__(
        self,
        decoder: ConvDecoder | dict | None = None,
        likelihood: str = "discretized_logistic",
        likelihood_stddev: float = 0.1,
        kl_weight: float = 1.0,
        prior: str = "standard",
        **kwargs,
    ):
        refused = sorted({"inner_loss", "outer_loss"} & set(kwargs))
        if refused:
            raise InputError(
                f"VariationalGON's losses are the negative ELBO: it takes no {', '.join(refused)} "
                "(set likelihood / kl_weight)"
            )
        self.set_likelihood(likelihood, likelihood_stddev)  # (the metric trackers need it)
        kwargs.setdefault("step_size", DEFAULT_STEP_SIZE)
        # === Layers ===
        decoder = self.make_variational_decoder(decoder, kwargs)
        seed, dtype, dim = kwargs.get("seed"), kwargs.get("dtype"), decoder.latent_dim
        mean_dense = pytorch_dense(dim, dim, "posterior_mean", dtype)
        log_variance_dense = pytorch_dense(dim, dim, "posterior_log_variance", dtype)
        # Not the origin's seed: the two generators would draw the same noise.
        reparameterization = Reparameterization(
            seed=None if seed is None else seed + 1, dtype=dtype, name="reparameterization"
        )
        super().__init__(image_shape=decoder.image_shape, latent_dim=dim, **kwargs)
        self.mean_dense = mean_dense
        self.log_variance_dense = log_variance_dense
        self.reparameterization = reparameterization
        self.decoder = decoder
        self.init_kl_weight(kl_weight)
        self.init_prior(prior)
        self.build()

    def build(self, input_shape=None):
        """Creates every weight; all shapes are known from the config."""
        for dense in (self.mean_dense, self.log_variance_dense):
            if not dense.built:
                dense.build((None, self.latent_dim))
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.built = True

    def posterior(self, images, training=False) -> tuple[tf.Tensor, tf.Tensor]:
        """(μ, log σ²) of the posterior of a batch of images: the affine maps of the
        origin gradient z = -∇ of eq. 9's inner loss at z0 = 0 (`posterior_of`)."""
        return self.posterior_of(self.encode_latents(images, training=training))

    def posterior_of(self, latents) -> tuple[tf.Tensor, tf.Tensor]:
        """(μ, log σ²): the two affine maps at the start of F, of `latents`."""
        return self.mean_dense(latents), self.log_variance_dense(latents)

    def decode_with_posterior(
        self, latents, training=False, inner_pass=False, sample=None, logits: bool = False
    ):
        """(F(latents), μ, log σ²): the decoded sample z' of N(μ, σ²) and the posterior;
        with `logits`, F as the likelihood takes it (`likelihood_outputs`)."""
        mean, log_variance = self.posterior_of(latents)
        z = self.reparameterization([mean, log_variance], training=training, sample=sample)
        if logits:
            outputs = self.likelihood_outputs(z, training=training, inner_pass=inner_pass)
        else:
            outputs = self.decoder(z, training=training, inner_pass=inner_pass)
        return outputs, mean, log_variance

    def decode_latents(self, latents, training=False, inner_pass=False):
        """Images F(latents) in [0, 1] (the likelihood's location)."""
        outputs = self.decode_with_posterior(latents, training=training, inner_pass=inner_pass)[0]
        return self.output_images(outputs)

    def inner_losses(self, data, latents, training=False):
        """-ELBO(x; F(z)) - log N(z; 0, 2I) per example: z = -∇ of this at z0 (eq. 9)."""
        logits = self.likelihood_takes_logits
        reconstruction, mean, log_variance = self.decode_with_posterior(
            latents, training=training, inner_pass=True, logits=logits
        )
        negative_elbo = self.elbo_losses(data, reconstruction, mean, log_variance, logits=logits)[
            "loss"
        ]
        prior = gon_losses.gaussian_negative_log_density(latents, ORIGIN_PRIOR_VARIANCE)
        return negative_elbo + keras.ops.cast(prior, negative_elbo.dtype)

    def outer_losses(self, data, latents, training=False):
        """The per-example -ELBO terms at z (a dict, see `outer_terms`)."""
        return self.outer_terms(data, latents, training=training)

    def outer_terms(self, data, latents, training=False) -> dict:
        """Per-example -ELBO terms at z (eq. 10); z' ~ q at evaluation too (Monte Carlo)."""
        logits = self.likelihood_takes_logits
        reconstruction, mean, log_variance = self.decode_with_posterior(
            latents, training=training, inner_pass=False, sample=True, logits=logits
        )
        terms = self.elbo_losses(data, reconstruction, mean, log_variance, logits=logits)
        return {**terms, "reconstructions": self.likelihood_images(reconstruction)}

    def get_config(self):
        config = super().get_config()
        for name in ("inner_loss", "outer_loss"):  # the negative ELBO, not options
            config.pop(name, None)
        return config

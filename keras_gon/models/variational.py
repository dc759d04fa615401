"""What the variational GON and the VAE share: the negative ELBO (eq. 10), β, sampling."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.errors import InputError
from keras_gon.validation import check_seed


def check_kl_weight(kl_weight) -> float:
    """β as a float >= 0, or an InputError naming the bad value."""
    try:
        value = float(kl_weight)
    except (TypeError, ValueError):
        raise InputError(f"kl_weight must be a number >= 0, got {kl_weight!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise InputError(f"kl_weight must be a number >= 0, got {kl_weight}")
    return value


class VariationalMixin:
    """The ELBO and prior sampling of a model with a Gaussian posterior and a `decoder`.

    Mixed into `keras_gon.VariationalGON` and `keras_gon.VAE` (before their
    `keras.Model` base): both train on the same per-example negative ELBO
    (`keras_gon.losses.negative_elbo`), hold β in a non-trainable variable
    that `keras_gon.callbacks.KLWarmup` can change between steps, and sample
    by decoding z ~ N(0, I) with their `decoder` (a `ConvDecoder`).
    """

    @property
    def metric_terms(self) -> tuple[str, ...]:
        """The base model's terms, then the -ELBO's: bits/dim only where the likelihood is
        a probability of the data (`keras_gon.losses.elbo_metric_names`)."""
        return tuple(super().metric_terms) + gon_losses.elbo_metric_names(self.likelihood)

    def set_likelihood(self, likelihood: str, likelihood_stddev: float) -> None:
        """Validates and stores p(x|z); call before `keras.Model.__init__` (the metric
        trackers depend on it)."""
        # === Config ===
        self.likelihood, self.likelihood_stddev = gon_losses.check_likelihood(
            likelihood, likelihood_stddev
        )

    def make_variational_decoder(self, decoder, options: dict):
        """The model's `ConvDecoder` (see `ConvDecoderModel.make_decoder`), with the
        log-scale output the likelihood needs."""
        scale = gon_losses.likelihood_parameters(self.likelihood) == 2
        return self.make_decoder(decoder, options, output_log_scale=scale)

    def xla_fuses_on_cpu(self) -> bool:
        """Also the discretised logistic likelihood: two dozen elementwise ops and their
        derivatives, which XLA fuses (`default_jit_compile`)."""
        return self.likelihood == "discretized_logistic" or super().xla_fuses_on_cpu()

    def init_kl_weight(self, kl_weight: float) -> None:
        """Stores β and its variable; call after `keras.Model.__init__`."""
        # === Config ===
        self.kl_weight = check_kl_weight(kl_weight)

        # === State ===
        # β as a variable: a compiled train step reads its current value.
        self.kl_weight_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.kl_weight),
            trainable=False,
            dtype="float32",
            name="kl_weight",
        )

    def set_kl_weight(self, value: float) -> None:
        """Sets β, the weight of the KL term in the training loss (not in bits_per_dim)."""
        self.kl_weight_variable.assign(check_kl_weight(value))

    @property
    def likelihood_takes_logits(self) -> bool:
        """Whether the likelihood is evaluated on the decoder's logits (the Bernoulli ones,
        `keras_gon.losses.LOGIT_LIKELIHOODS`): the sigmoid fused into the cross-entropy."""
        return self.likelihood in gon_losses.LOGIT_LIKELIHOODS

    def likelihood_outputs(self, latents, training=False, **options):
        """`decoder(latents)` as `elbo_losses` takes it: the logits where the likelihood
        takes them (`likelihood_takes_logits`), else the decoder's output."""
        return self.decoder(
            latents, training=training, logits=self.likelihood_takes_logits, **options
        )

    def likelihood_images(self, outputs):
        """Images in [0, 1] from `likelihood_outputs`."""
        if self.likelihood_takes_logits:
            outputs = self.decoder.output_activation(outputs)
        return self.output_images(outputs)

    def output_images(self, outputs):
        """Images in [0, 1] from the decoder's output: the location (clipped to [0, 1] for
        the discretised logistic, whose location is unbounded), without the log-scale."""
        images = outputs[..., : self.image_shape[-1]]
        if self.likelihood == "discretized_logistic":
            images = tf.clip_by_value(images, 0.0, 1.0)
        return images

    def elbo_losses(self, data, reconstruction, mean, log_variance, logits: bool = False) -> dict:
        """Per-example negative ELBO terms of `reconstruction` = decoder(z), z ~ N(mean, σ²)
        (the decoder's logits with `logits`, see `likelihood_outputs`)."""
        return gon_losses.negative_elbo(
            data,
            reconstruction,
            mean,
            log_variance,
            likelihood=self.likelihood,
            likelihood_stddev=self.likelihood_stddev,
            kl_weight=self.kl_weight_variable,
            logits=logits,
        )

    def sample(self, n: int, seed: int | None = None):
        """`n` images decoded in one pass from z ~ N(0, I): (n, H, W, C) in [0, 1].

        The same integer `seed` gives the same images, and the same images as
        the exported `sample` signature; `seed=None` draws a seed from NumPy's
        global generator (seeded by `keras.utils.set_random_seed`). The decoder
        runs in inference mode.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"the number of samples must be a positive integer, got {n!r}")
        if seed is None:
            seed = int(np.random.randint(2**31 - 1))
        seed = check_seed(seed)
        fn = self.inference_function("sample", self.sample_images)
        return fn(tf.constant(int(n), tf.int32), tf.constant(seed, tf.int32))

    def sample_images(self, count, seed):
        """`count` images F(z), z ~ N(0, I) drawn statelessly from an integer `seed` (graph-level).

        What the exported `sample` signature runs: the prior sample goes
        straight into `decoder` (for the variational GON this skips the maps
        to μ and log σ², as `sample` does).
        """
        seed = tf.stack([tf.cast(seed, tf.int32), 0])
        shape = tf.stack([tf.cast(count, tf.int32), self.latent_dim])
        latents = tf.random.stateless_normal(shape, seed, dtype=self.latent_dtype)
        return self.output_images(self.decoder(latents, training=False))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "likelihood": self.likelihood,
                "likelihood_stddev": self.likelihood_stddev,
                "kl_weight": self.kl_weight,
            }
        )
        return config

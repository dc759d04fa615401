"""What the variational GON and the VAE share: the negative ELBO (eq. 10), β, sampling."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.errors import InputError
from keras_gon.models.latent_normal import LatentNormalMixin
from keras_gon.options import PRIORS
from keras_gon.resources import check_memory, decoding_bytes
from keras_gon.validation import check_choice, check_seed


def check_kl_weight(kl_weight) -> float:
    """β as a float >= 0, or an InputError naming the bad value."""
    try:
        value = float(kl_weight)
    except (TypeError, ValueError):
        raise InputError(f"kl_weight must be a number >= 0, got {kl_weight!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise InputError(f"kl_weight must be a number >= 0, got {kl_weight}")
    return value


def check_prior(prior) -> str:
    """The sampling prior's name (`keras_gon.options.PRIORS`), or an InputError naming it."""
    return check_choice(prior, "prior", PRIORS)


class VariationalMixin(LatentNormalMixin):
    """The ELBO and prior sampling of a model with a Gaussian posterior and a `decoder`.

    Mixed into `keras_gon.VariationalGON` and `keras_gon.VAE` (before their
    `keras.Model` base): both train on the same per-example negative ELBO
    (`keras_gon.losses.negative_elbo`), hold β in a non-trainable variable
    that `keras_gon.callbacks.KLWarmup` can change between steps, and sample
    by decoding z with their `decoder` (a `ConvDecoder`): z ~ N(0, I) (the
    paper's, `prior="standard"`) or, with `prior="fitted"`, z from a normal
    fitted to the aggregate posterior of the training images at the end of `fit`
    (`fit_latent_statistics`; the ELBO and bits/dim keep N(0, I)).
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

    def init_prior(self, prior: str) -> None:
        """Stores the sampling prior and, for "fitted", its normal's variables; call
        after `keras.Model.__init__` (and after `init_kl_weight`)."""
        # === Config ===
        self.prior = check_prior(prior)

        # === State ===
        if self.prior == "fitted":
            self.add_latent_normal()

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

    def sample(self, n: int, seed: int | None = None, prior: str | None = None):
        """`n` images decoded in one pass from z ~ the prior: (n, H, W, C) in [0, 1].

        `prior` is the model's (`prior=` of the constructor) unless given:
        "standard" draws z ~ N(0, I) (the paper's sampling, eq. 10's prior),
        "fitted" from the normal fitted to the training images' aggregate
        posterior (`fit_latent_statistics`). The same integer `seed` gives the
        same images, and the same images as the exported `sample` signature;
        `seed=None` draws a seed from NumPy's global generator (seeded by
        `keras.utils.set_random_seed`). The decoder runs in inference mode.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"the number of samples must be a positive integer, got {n!r}")
        prior = self.check_sampling_prior(prior)
        check_memory(
            decoding_bytes(self, int(n)), f"sample({n}): decoding {n:,} images", ": ask for fewer"
        )
        if seed is None:
            seed = int(np.random.randint(2**31 - 1))
        seed = check_seed(seed)
        fn = self.inference_function(
            f"sample_{prior}", lambda count, seed: self.sample_images(count, seed, prior)
        )
        return fn(tf.constant(int(n), tf.int32), tf.constant(seed, tf.int32))

    def with_prior(self, prior: str):
        """A copy of this model that samples from `prior` ("standard" or "fitted",
        `keras_gon.options.PRIORS`): the same config and trained weights. Not carried:
        a fitted normal (the copy's next `fit` or `fit_latent_statistics` fits one),
        the compiled state and layers' `trainable` flags."""
        prior = check_prior(prior)
        copy = type(self).from_config({**self.get_config(), "prior": prior})
        weights = {variable.path: variable for variable in self.weights}
        normal = {"latent_mean", "latent_covariance", "latent_count"}
        missing = []
        for variable in copy.weights:
            if variable.path in weights:
                variable.assign(weights.pop(variable.path))
            elif variable.name not in normal:
                missing.append(variable.path)
        left = [path for path, v in weights.items() if v.name not in normal]
        if missing or left:
            raise InputError(
                f"cannot copy {type(self).__name__}'s weights to prior={prior!r}: "
                f"{(missing or left)[:3]} do not match"
            )
        return copy

    def check_sampling_prior(self, prior: str | None = None) -> str:
        """`prior` (default: the model's) if the model can sample from it, else a clear error."""
        prior = self.prior if prior is None else check_prior(prior)
        if prior == "fitted":
            self.check_latent_normal()
            if not self.has_latent_statistics:
                raise InputError(
                    "the fitted prior has not been fitted: train the model with fit() or "
                    "call fit_latent_statistics(images)"
                )
        return prior

    def check_latent_normal(self) -> None:
        """Only a model built with `prior="fitted"` holds the fitted normal."""
        if self.prior != "fitted":
            raise InputError(
                f"{type(self).__name__} was built with prior={self.prior!r}: it has no "
                "fitted normal (build it with prior='fitted', or keras-gon train --prior fitted)"
            )

    def sample_latents(self, count, seed, prior: str | None = None):
        """z ~ the prior (default: the model's), (count, latent_dim), drawn statelessly
        from an integer seed (graph-level, e.g. for export)."""
        if check_prior(self.prior if prior is None else prior) == "fitted":
            self.check_latent_normal()
            return self.fitted_latents(count, seed)
        seed = tf.stack([tf.cast(seed, tf.int32), 0])
        shape = tf.stack([tf.cast(count, tf.int32), self.latent_dim])
        return tf.random.stateless_normal(shape, seed, dtype=self.latent_dtype)

    def sample_images(self, count, seed, prior: str | None = None):
        """`count` images F(z), z ~ the prior drawn statelessly from an integer `seed`
        (graph-level; `sample_latents`).

        What the exported `sample` signature runs: the prior sample goes
        straight into `decoder` (for the variational GON this skips the maps
        to μ and log σ², as `sample` does).
        """
        latents = self.sample_latents(count, seed, prior)
        return self.output_images(self.decoder(latents, training=False))

    def posterior(self, images, training=False):
        """(μ, log σ²) of q(z|x) for a batch of prepared images, each (batch, latent_dim)."""
        raise NotImplementedError(f"{type(self).__name__} must implement posterior")

    def latent_moments(self, images):
        """(μ, σ²) of q(z|x): the fitted prior is the moment match of the aggregate
        posterior, mean E[μ] and covariance Cov(μ) + diag(E[σ²]) (`fit_latent_statistics`)."""
        mean, log_variance = self.posterior(images)
        return mean, tf.exp(log_variance)

    fit_prior_after_fit = True
    """Whether `fit` ends by fitting the "fitted" prior (`keras_gon.training.train` turns it
    off while it trains on a repeated dataset, and fits the prior on one pass itself)."""

    def after_fit(self, x, fit_options: dict) -> None:
        """With the "fitted" prior, fits it to the training images (`fit_latent_statistics`):
        an array's in `fit`'s batches (without the `validation_split` Keras held back), a
        dataset's batches (one that does not end: its first `steps_per_epoch`). Not after a
        training stopped by a non-finite loss; what cannot be fitted is a warning, the
        trained model kept."""
        super().after_fit(x, fit_options)
        if self.prior != "fitted" or not self.fit_prior_after_fit:
            return
        callbacks = fit_options.get("callbacks") or []
        if any(getattr(c, "stopped_at_step", None) is not None for c in callbacks):
            return  # (the loss became non-finite: StopOnNonFiniteLoss has said so)
        source = type(x).__name__
        if tf.is_tensor(x):
            x = np.asarray(x)
        options = {}
        if isinstance(x, tf.data.Dataset):
            steps = fit_options.get("steps_per_epoch")
            options["steps"] = steps if x.cardinality() < 0 and steps else None
        elif isinstance(x, np.ndarray):
            split = fit_options.get("validation_split") or 0.0
            x = x[: int(math.floor(len(x) * (1.0 - split)))]  # the images Keras trained on
            options["batch_size"] = fit_options.get("batch_size") or 32
        else:
            self.warn_prior_not_fitted(f"fit cannot read its {source} input again")
            return
        self.fit_prior_or_warn(x, **options)

    def fit_prior_or_warn(self, data, **options) -> bool:
        """`fit_latent_statistics(data, **options)` after a training: what cannot be fitted
        is a warning, not an error, so the trained model is kept. Returns whether it was."""
        try:
            self.fit_latent_statistics(data, **options)
        except InputError as error:
            self.warn_prior_not_fitted(str(error))
            return False
        return True

    def warn_prior_not_fitted(self, reason: str) -> None:
        """Warns that the "fitted" prior was not fitted after training, and why."""
        warnings.warn(
            f"prior='fitted' was not fitted ({reason}): call fit_latent_statistics(images) "
            "before sampling",
            RuntimeWarning,
            stacklevel=4,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "likelihood": self.likelihood,
                "likelihood_stddev": self.likelihood_stddev,
                "kl_weight": self.kl_weight,
                "prior": self.prior,
            }
        )
        return config

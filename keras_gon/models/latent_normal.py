"""A normal over the latent space fitted to the data's latents, to sample from.

The implicit GON samples from a normal fitted to its training latents (appendix D); a
variational model with `prior="fitted"` samples from a normal fitted to its aggregate
posterior (ex-post density estimation), where z ~ N(0, I) leaves the region its decoder
was trained on. `LatentNormalMixin` holds that normal in three non-trainable float32
variables, saved with the model, fits it to images and draws from it.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.validation import check_positive_int

FIT_BATCH_SIZE = 256
"""Images per batch when `fit_latent_statistics` is given an array."""


class LatentNormalMixin:
    """N(latent_mean, latent_covariance) over the latents, held in the model's variables.

    Mixed into `keras_gon.ImplicitGON` and `keras_gon.models.VariationalMixin`:
    `add_latent_normal` creates `latent_mean` (latent_dim,), `latent_covariance`
    (latent_dim, latent_dim) and `latent_count` (how many latents it was fitted to;
    0: not fitted), `fit_latent_statistics` fits it to the latents of images (the
    model's `latent_moments`), `set_latent_statistics` stores a fit and
    `fitted_latents` draws from it.
    """

    def add_latent_normal(self) -> None:
        """Creates the normal's variables (float32 under any dtype policy): N(0, I),
        fitted to 0 latents."""
        dim = self.latent_dim
        self.latent_mean = self.add_weight(
            shape=(dim,), initializer="zeros", trainable=False, name="latent_mean", dtype="float32"
        )
        self.latent_covariance = self.add_weight(
            shape=(dim, dim),
            initializer="identity",
            trainable=False,
            name="latent_covariance",
            dtype="float32",
        )
        self.latent_count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="latent_count", dtype="float32"
        )

    @property
    def has_latent_normal(self) -> bool:
        """Whether the model holds the normal's variables."""
        return hasattr(self, "latent_count")

    def check_latent_normal(self) -> None:
        """Raises a clear error if the model holds no normal (overridden where that can be)."""
        if not self.has_latent_normal:
            raise InputError(f"{type(self).__name__} holds no fitted normal")

    @property
    def has_latent_statistics(self) -> bool:
        """Whether the normal was fitted (to at least 2 latents)."""
        return self.has_latent_normal and float(self.latent_count.numpy()) >= 2

    def fitted_latents(self, count, seed) -> tf.Tensor:
        """z ~ N(latent_mean, latent_covariance), (count, latent_dim), from an integer seed.

        Graph-level (e.g. for export): z = mean + V sqrt(λ) ε with the
        eigendecomposition of the covariance (rounding can leave tiny negative
        eigenvalues: clipped to 0) and ε ~ N(0, I) drawn statelessly from `seed`.
        """
        seed = tf.stack([tf.cast(seed, "int32"), 0])
        noise = tf.random.stateless_normal(
            tf.stack([tf.cast(count, "int32"), self.latent_dim]), seed, dtype="float32"
        )
        covariance = tf.convert_to_tensor(self.latent_covariance)
        eigenvalues, eigenvectors = tf.linalg.eigh(0.5 * (covariance + tf.transpose(covariance)))
        factor = eigenvectors * tf.sqrt(tf.maximum(eigenvalues, 0.0))
        latents = self.latent_mean + tf.matmul(noise, factor, transpose_b=True)
        return tf.cast(latents, self.latent_dtype)

    def set_latent_statistics(self, mean, covariance, count: int) -> None:
        """Stores the normal that `sample` draws from (saved with the model)."""
        self.check_latent_normal()
        mean = np.asarray(mean, dtype="float64")
        covariance = np.asarray(covariance, dtype="float64")
        dim = self.latent_dim
        if mean.shape != (dim,) or covariance.shape != (dim, dim):
            raise InputError(
                f"latent statistics have shapes {mean.shape} and {covariance.shape}, "
                f"expected ({dim},) and ({dim}, {dim})"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(covariance))):
            raise InputError("latent statistics contain NaN or infinite values")
        with np.errstate(over="ignore"):
            mean, covariance = mean.astype("float32"), covariance.astype("float32")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(covariance))):
            raise InputError("latent statistics beyond float32's range (above 3.4e38)")
        self.latent_mean.assign(mean)
        self.latent_covariance.assign(covariance)
        self.latent_count.assign(float(count))

    def latent_moments(self, images) -> tuple[tf.Tensor, tf.Tensor]:
        """Graph-level: (latents, per-example variances), each (batch, latent_dim), of a
        batch of prepared images: what the normal is fitted to (`fit_latent_statistics`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement latent_moments")

    def fit_latent_statistics(
        self, data, batch_size: int = FIT_BATCH_SIZE, steps: int | None = None
    ) -> int:
        """Fits the normal to the latents of `data`'s images; returns how many images.

        The mean and covariance of the mixture of N(m_i, diag(v_i)) over the
        images' `latent_moments` (m_i, v_i): mean E[m], covariance Cov(m)
        (n - 1 in the denominator) + diag(E[v]). `data` is an array of images (as
        `fit` takes them, in batches of `batch_size`) or a finite `tf.data.Dataset`
        of batches (images or `(images, ...)` tuples; with `steps`, its first
        `steps` batches). `batch_size` is for arrays only, `steps` for datasets only.
        """
        from keras_gon.data.preprocessing import input_errors_from_graph

        self.check_latent_normal()
        batch_size = check_positive_int(batch_size, "batch_size")
        if steps is not None:
            steps = check_positive_int(steps, "steps")
        if tf.is_tensor(data):
            data = np.asarray(data)
        if isinstance(data, tf.data.Dataset) and _yields_dicts(data):
            raise InputError(
                "fit_latent_statistics needs a dataset of images or (images, ...) tuples, this "
                "one yields dicts"
            )
        data = self.prepare_data(data, "data")  # (the checks and scaling of fit)
        if isinstance(data, tf.data.Dataset):
            if steps is not None:
                data = data.take(steps)
            if data.cardinality() == tf.data.INFINITE_CARDINALITY:
                raise InputError(
                    "fit_latent_statistics needs a finite dataset (this one repeats forever): "
                    "give steps"
                )
            batches = (self.unpack_images(batch) for batch in data)
        elif isinstance(data, np.ndarray):
            batches = (
                self.prepare_images(data[start : start + batch_size])
                for start in range(0, len(data), batch_size)
            )
        else:
            raise InputError(
                "fit_latent_statistics takes an array of images or a tf.data.Dataset, got "
                f"{type(data).__name__}"
            )
        moments = self.inference_function("latent_moments", self.latent_moments)
        count, total, products, variances = 0, 0.0, 0.0, 0.0
        with input_errors_from_graph():  # a dataset's bad batch: one line, as in fit
            for batch in batches:
                latents, variance = (np.asarray(t, dtype="float64") for t in moments(batch))
                count += len(latents)
                total = total + latents.sum(0)
                products = products + latents.T @ latents
                variances = variances + variance.sum(0)
        if count < 2:
            raise InputError(f"fit_latent_statistics needs at least 2 images, got {count}")
        if count <= self.latent_dim:
            warnings.warn(
                f"the latent normal is fitted to {count} images, no more than latent_dim "
                f"({self.latent_dim}): the covariance of their latents is rank-deficient",
                RuntimeWarning,
                stacklevel=2,
            )
        mean = total / count
        covariance = (products - count * np.outer(mean, mean)) / (count - 1)
        self.set_latent_statistics(mean, covariance + np.diag(variances / count), count)
        return count


def _yields_dicts(dataset) -> bool:
    """Whether a dataset's elements (or their first part) are dicts."""
    spec = dataset.element_spec
    return isinstance(spec, dict) or (isinstance(spec, tuple) and isinstance(spec[0], dict))

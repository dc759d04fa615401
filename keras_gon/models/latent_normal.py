"""A normal over the latent space fitted to the data's latents, to sample from.

The implicit GON samples from a normal fitted to its training latents (appendix D); a
variational model with `prior="fitted"` samples from a normal fitted to its aggregate
posterior (ex-post density estimation), where z ~ N(0, I) leaves the region its decoder
was trained on. `LatentNormalMixin` holds that normal in three non-trainable variables,
saved with the model, and draws from it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_gon.errors import InputError


class LatentNormalMixin:
    """N(latent_mean, latent_covariance) over the latents, held in the model's variables.

    Mixed into `keras_gon.ImplicitGON` and `keras_gon.models.VariationalMixin`:
    `add_latent_normal` creates `latent_mean` (latent_dim,), `latent_covariance`
    (latent_dim, latent_dim) and `latent_count` (how many latents it was fitted to;
    0: not fitted), `set_latent_statistics` stores a fit and `fitted_latents` draws
    from it.
    """

    def add_latent_normal(self) -> None:
        """Creates the normal's variables: N(0, I), fitted to 0 latents."""
        dim = self.latent_dim
        self.latent_mean = self.add_weight(
            shape=(dim,), initializer="zeros", trainable=False, name="latent_mean"
        )
        self.latent_covariance = self.add_weight(
            shape=(dim, dim), initializer="identity", trainable=False, name="latent_covariance"
        )
        self.latent_count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="latent_count"
        )

    def fitted_latents(self, count, seed):
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

    def set_latent_statistics(self, mean, covariance, count: int):
        """Stores the normal that `sample` draws from (saved with the model)."""
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
        self.latent_mean.assign(mean.astype("float32"))
        self.latent_covariance.assign(covariance.astype("float32"))
        self.latent_count.assign(float(count))

    @property
    def has_latent_statistics(self) -> bool:
        """Whether the normal was fitted (to at least 2 latents)."""
        return float(self.latent_count.numpy()) >= 2

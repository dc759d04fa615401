"""keras_gon.models.latent_normal: the normal over the latents a model samples from, here
through the implicit GON (latents, no variances; the variational models': test_variational)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError


def _model():
    return keras_gon.ImplicitGON(image_shape=(28, 28, 1), latent_dim=4, hidden_units=8, seed=0)


def test_fit_latent_statistics_is_the_mean_and_covariance_of_the_latents(mnist10k):
    model = _model()
    images = mnist10k["x_test"][:50]
    assert model.fit_latent_statistics(images, batch_size=16) == 50  # four batches, the last 2
    latents = np.asarray(model.encode(images), "float64")
    np.testing.assert_allclose(model.latent_mean.numpy(), latents.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        model.latent_covariance.numpy(), np.cov(latents, rowvar=False), rtol=1e-4, atol=1e-8
    )
    assert model.latent_count.numpy() == 50 and model.has_latent_statistics


def test_fitted_latents_have_the_stored_moments_and_are_seeded():
    model = _model()
    covariance = np.array([[4.0, 1.0, 0, 0], [1.0, 1.0, 0, 0], [0, 0, 0.25, 0], [0, 0, 0, 0]])
    model.set_latent_statistics(np.arange(4.0), covariance, count=9)
    latents = model.fitted_latents(tf.constant(20000), tf.constant(3)).numpy()
    np.testing.assert_allclose(latents.mean(0), np.arange(4.0), atol=0.05)
    np.testing.assert_allclose(np.cov(latents, rowvar=False), covariance, atol=0.08)
    same = model.fitted_latents(tf.constant(5), tf.constant(3)).numpy()
    np.testing.assert_allclose(same, latents[:5], rtol=1e-5)  # (the same stateless draw)


def test_bad_statistics_are_refused_by_name():
    model = _model()
    with pytest.raises(InputError, match=r"shapes \(3,\) and \(4, 4\), expected \(4,\)"):
        model.set_latent_statistics(np.zeros(3), np.eye(4), 2)
    with pytest.raises(InputError, match="NaN or infinite"):
        model.set_latent_statistics(np.full(4, np.nan), np.eye(4), 2)
    with pytest.raises(InputError, match="beyond float32's range"):
        model.set_latent_statistics(np.full(4, 1e39), np.eye(4), 2)
    assert not model.has_latent_statistics

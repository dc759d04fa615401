"""keras_gon.models.variational: what the VariationalGON and the VAE share; here the
"fitted" prior (a normal fitted to the aggregate posterior of the training images)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError

from helpers import save_and_load

MODELS = [keras_gon.VariationalGON, keras_gon.VAE]


def _tiny(model_class, **options):
    keras.utils.set_random_seed(0)
    return model_class(image_shape=(16, 16, 1), latent_dim=4, width=2, seed=0, **options)


def _digits(mnist10k, count=96):
    images = mnist10k["x_train"][:count, ::2, ::2]  # 14x14, resized to 16x16 by the model
    return images


def _decoded(model, latents):
    """What sampling decodes: z straight into `decoder` (past the VGON's maps to μ, log σ²)."""
    return model.output_images(model.decoder(tf.constant(latents), training=False)).numpy()


def _aggregate_posterior(model, images):
    """Mean and covariance of q(z) = mean_x q(z|x), in NumPy from the model's posterior."""
    prepared = model.prepare_images(model.check_images(images))
    mean, log_variance = (np.asarray(t, "float64") for t in model.posterior(prepared))
    covariance = np.cov(mean, rowvar=False) + np.diag(np.exp(log_variance).mean(0))
    return mean.mean(0), covariance


@pytest.mark.parametrize("model_class", MODELS)
def test_fit_latent_statistics_is_the_aggregate_posteriors_moments(model_class, mnist10k):
    model = _tiny(model_class, prior="fitted")
    images = _digits(mnist10k)
    assert not model.has_latent_statistics
    # batches of 40 (three, the last of 16): the pooled moments are those of all images
    assert model.fit_latent_statistics(images, batch_size=40) == len(images)
    mean, covariance = _aggregate_posterior(model, images)
    np.testing.assert_allclose(model.latent_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.latent_covariance.numpy(), covariance, rtol=1e-4, atol=1e-6)
    assert model.latent_count.numpy() == len(images)
    # a dataset of (images, anything) batches gives the same normal
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images)))).batch(32)
    model.fit_latent_statistics(dataset)
    np.testing.assert_allclose(model.latent_mean.numpy(), mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_class", MODELS)
def test_fit_fits_the_prior_to_every_training_image(model_class, mnist10k):
    images = _digits(mnist10k, 128)
    model = _tiny(model_class, prior="fitted")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    mean, covariance = _aggregate_posterior(model, images)  # the trained weights'
    np.testing.assert_allclose(model.latent_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.latent_covariance.numpy(), covariance, rtol=1e-3, atol=1e-5)
    # a dataset that repeats: the prior is fitted to the batches of one epoch
    repeated = tf.data.Dataset.from_tensor_slices(images).batch(32).repeat()
    model.fit(repeated, steps_per_epoch=3, epochs=1, verbose=0)
    assert model.latent_count.numpy() == 3 * 32
    mean, _ = _aggregate_posterior(model, images[:96])
    np.testing.assert_allclose(model.latent_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
    # an array: the images Keras trained on, not those it held back for validation
    model.fit(images[:90], None, 32, 1, 0, validation_split=0.25)  # (batch_size positional)
    assert model.latent_count.numpy() == 67  # floor(90 * 0.75), as Keras splits
    mean, _ = _aggregate_posterior(model, images[:67])
    np.testing.assert_allclose(model.latent_mean.numpy(), mean, rtol=1e-4, atol=1e-5)


def test_fit_from_a_generator_warns_that_the_prior_is_not_fitted(mnist10k):
    images = _digits(mnist10k, 64).astype("float32") / 255.0
    model = _tiny(keras_gon.VAE, prior="fitted")
    model.compile(optimizer="adam")

    def batches():
        for start in range(0, 64, 32):
            yield (images[start : start + 32, ..., None],)

    with pytest.warns(RuntimeWarning, match="call fit_latent_statistics"):
        model.fit(batches(), epochs=1, verbose=0)
    assert not model.has_latent_statistics


def test_a_float64_model_samples_from_its_float32_normal(mnist10k):
    model = _tiny(keras_gon.VAE, prior="fitted", dtype="float64")
    assert model.latent_mean.dtype == "float32"
    model.fit_latent_statistics(_digits(mnist10k))
    samples = model.sample(3, seed=0)
    assert samples.dtype == tf.float64 and np.all(np.isfinite(samples.numpy()))


@pytest.mark.parametrize("model_class", MODELS)
def test_samples_come_from_the_chosen_prior(model_class, mnist10k, tmp_path):
    model = _tiny(model_class, prior="fitted")
    model.set_latent_statistics(np.full(4, 3.0), np.diag([4.0, 1.0, 0.25, 0.0]), count=10)
    latents = model.sample_latents(tf.constant(4000), tf.constant(1)).numpy()
    np.testing.assert_allclose(latents.mean(0), [3, 3, 3, 3], atol=0.1)
    np.testing.assert_allclose(latents.std(0), [2, 1, 0.5, 0], atol=0.05)
    fitted = model.sample(6, seed=1).numpy()
    np.testing.assert_allclose(_decoded(model, latents[:6]), fitted, rtol=1e-5, atol=1e-6)
    standard = model.sample(6, seed=1, prior="standard").numpy()
    normal = model.sample_latents(tf.constant(6), tf.constant(1), "standard").numpy()
    np.testing.assert_allclose(_decoded(model, normal), standard, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fitted, standard)
    # the normal is saved with the model, and so is the choice
    loaded = save_and_load(model, tmp_path / "fitted.keras")
    assert loaded.prior == "fitted" and loaded.get_config()["prior"] == "fitted"
    np.testing.assert_array_equal(loaded.sample(6, seed=1).numpy(), fitted)


@pytest.mark.parametrize("model_class", MODELS)
def test_the_standard_prior_adds_no_variable(model_class):
    standard, fitted = _tiny(model_class), _tiny(model_class, prior="fitted")
    assert standard.prior == "standard" and not hasattr(standard, "latent_mean")
    assert len(fitted.weights) == len(standard.weights) + 3


def test_a_preset_without_the_option_loads_and_samples_from_n01():
    model = keras_gon.VariationalGON.from_preset("vgon_mnist")
    assert model.prior == "standard"
    assert model.sample(2, seed=0).shape == (2, 32, 32, 1)


@pytest.mark.parametrize("model_class", MODELS)
def test_bad_priors_are_refused_with_one_line(model_class, mnist10k):
    with pytest.raises(InputError, match="unknown prior .*: expected one of"):
        _tiny(model_class, prior="uniform")
    standard = _tiny(model_class)
    with pytest.raises(InputError, match="built with prior='standard'"):
        standard.sample(2, prior="fitted")
    with pytest.raises(InputError, match="built with prior='standard'"):
        standard.fit_latent_statistics(_digits(mnist10k))
    fitted = _tiny(model_class, prior="fitted")
    with pytest.raises(InputError, match="has not been fitted"):
        fitted.sample(2)
    with pytest.raises(InputError, match="unknown prior .*: expected one of"):
        fitted.sample(2, prior="empirical")
    with pytest.raises(InputError, match="at least 2 images"):
        fitted.fit_latent_statistics(_digits(mnist10k, 1))
    forever = tf.data.Dataset.from_tensor_slices(_digits(mnist10k)).batch(8).repeat()
    with pytest.raises(InputError, match="finite dataset"):
        fitted.fit_latent_statistics(forever)
    assert fitted.fit_latent_statistics(forever, steps=2) == 16
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        fitted.fit_latent_statistics(_digits(mnist10k), batch_size=0)
    with pytest.raises(InputError, match="channels|shape"):
        fitted.fit_latent_statistics(np.zeros((4, 16, 16, 3), "uint8"))
    with pytest.raises(InputError, match="takes an array of images or a tf.data.Dataset"):
        fitted.fit_latent_statistics({"images": _digits(mnist10k)})
    with pytest.raises(InputError, match="unknown prior .*: expected one of"):
        fitted.sample_latents(2, 0, "fited")
    with pytest.raises(InputError, match=r"sample\(1000000000\): decoding .* ask for fewer"):
        standard.sample(10**9)
    assert not standard.has_latent_statistics
    with pytest.raises(InputError, match="built with prior='standard'"):
        standard.set_latent_statistics(np.zeros(4), np.eye(4), 2)


def test_export_refuses_a_fitted_prior_never_fitted(tmp_path):
    from keras_gon.export import export_version

    with pytest.raises(InputError, match="has not been fitted"):
        export_version(_tiny(keras_gon.VAE, prior="fitted"), tmp_path / "vae")


def test_the_exported_sample_signature_draws_from_the_fitted_prior(mnist10k, tmp_path):
    from keras_gon.export import export_version

    model = _tiny(keras_gon.VariationalGON, prior="fitted")
    model.fit_latent_statistics(_digits(mnist10k))
    loaded = tf.saved_model.load(str(export_version(model, tmp_path / "vgon")))
    images = loaded.signatures["sample"](count=tf.constant(5), seed=tf.constant(2))["images"]
    np.testing.assert_allclose(images.numpy(), model.sample(5, seed=2).numpy(), atol=1e-6)
    assert not np.allclose(images.numpy(), model.sample(5, seed=2, prior="standard").numpy())


def test_fit_faults_leave_the_prior_unfitted_with_a_warning_not_an_error(mnist10k):
    images = _digits(mnist10k, 64)
    model = _tiny(keras_gon.VAE, prior="fitted")
    model.compile(optimizer=keras.optimizers.Adam(1e30))
    with pytest.warns(RuntimeWarning, match="training stopped at step"):
        model.fit(images, batch_size=32, epochs=1, verbose=0)
    assert not model.has_latent_statistics  # (the loss became non-finite: not fitted)
    # a tensor is read again: a later fit refits the prior to the new weights
    model = _tiny(keras_gon.VAE, prior="fitted")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit_latent_statistics(images[:50])
    model.fit(tf.constant(images), batch_size=32, epochs=1, verbose=0)
    assert model.latent_count.numpy() == 64
    assert model.fit_latent_statistics(tf.constant(images[:40])) == 40


def test_bad_statistics_and_datasets_are_named(mnist10k):
    model = _tiny(keras_gon.VAE, prior="fitted")
    with pytest.raises(InputError, match="beyond float32's range"):
        model.set_latent_statistics(np.zeros(4), np.eye(4) * 1e39, 10)
    images = _digits(mnist10k, 16)
    as_dicts = tf.data.Dataset.from_tensor_slices({"image": images}).batch(8)
    with pytest.raises(InputError, match="this one yields dicts"):
        model.fit_latent_statistics(as_dicts)
    grey_levels = tf.data.Dataset.from_tensor_slices(images.astype("float32") * 2.0).batch(8)
    with pytest.raises(InputError) as error:  # floats above 1 in a dataset: one line, as fit
        model.fit_latent_statistics(grey_levels)
    assert "\n" not in str(error.value)
    with pytest.warns(RuntimeWarning, match="covariance of their latents is rank-deficient"):
        model.fit_latent_statistics(images[:3])


@pytest.mark.parametrize("model_class", MODELS)
def test_with_prior_copies_the_trained_model(model_class, mnist10k):
    """`with_prior`: the same config and weights, the other prior; a fitted normal is not
    carried to a copy (fitted again by its next fit or fit_latent_statistics)."""
    model = _tiny(model_class, prior="fitted")
    model.fit_latent_statistics(_digits(mnist10k))
    standard = model.with_prior("standard")
    assert standard.prior == "standard" and not hasattr(standard, "latent_mean")
    weights = {v.path: v.numpy() for v in model.weights}
    for variable in standard.weights:
        np.testing.assert_array_equal(variable.numpy(), weights[variable.path])
    images = _digits(mnist10k, 8)
    np.testing.assert_allclose(standard.encode(images), model.encode(images), rtol=1e-6)
    fitted = standard.with_prior("fitted")
    assert fitted.prior == "fitted" and not fitted.has_latent_statistics
    with pytest.raises(InputError, match="prior"):
        model.with_prior("uniform")

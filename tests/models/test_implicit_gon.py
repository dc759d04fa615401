"""keras_gon.ImplicitGON: real MNIST at 28x28, super-resolution, Monte Carlo coordinates,
sampling statistics, parameter counts, save/load, input checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.callbacks import LatentStatistics
from keras_gon.errors import InputError
from keras_gon.models.implicit_gon import coordinate_grid

from helpers import (
    assert_same_origin_step,
    assert_same_training_state,
    finite_difference_error,
    origin_step,
    save_and_load,
)

# Budget: 1 epoch of mnist10k at its native 28x28 (125 steps of 64), 4 sine
# layers of 32 units, latent 32, Adam 1e-3, seed 0, all coordinates.
# Measured held-out MSE per pixel (TF 2.21, CPU): 0.042 (the mean training
# image scores 0.067; after 3 epochs 0.027, benchmarks/implicit_gon_coordinates.py).
EPOCHS = 1
HELD_OUT_MSE_THRESHOLD = 0.05
# 256x256 renders of 16 held-out latents, area-averaged to 28x28, against the
# 28x28 renders: measured MSE 2.0e-5 and largest pixel difference 0.034, while
# the 28x28 renders differ from the images by MSE 0.044.
POOLED_MSE_THRESHOLD = 1e-4
POOLED_MAX_THRESHOLD = 0.1
SMALL = dict(hidden_units=32, num_layers=4, latent_dim=32)


def _images(mnist10k, split, count=None):
    x = mnist10k[split][:count]
    return (x[..., None] / 255.0).astype("float32")


@pytest.fixture(scope="module")
def trained(mnist10k, make_batches):
    keras.utils.set_random_seed(0)
    model = keras_gon.ImplicitGON(image_shape=(28, 28, 1), seed=0, **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8))
    model.fit(
        make_batches(_images(mnist10k, "x_train"), 64, shuffle=True), epochs=EPOCHS, verbose=0
    )
    held_out = model.evaluate(
        make_batches(_images(mnist10k, "x_test"), 500, shuffle=False), verbose=0, return_dict=True
    )
    return model, held_out["loss"]


def test_held_out_mse_after_one_epoch(trained, mnist10k):
    model, mse = trained
    assert mse < HELD_OUT_MSE_THRESHOLD, mse
    # evaluate's loss is the per-pixel MSE of the reconstructions F(z(x)).
    x = _images(mnist10k, "x_test", 500)
    unclipped = model.decode_latents(model.encode(x)).numpy()
    evaluated = model.evaluate(x, batch_size=500, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(np.mean((unclipped - x) ** 2), evaluated, rtol=1e-4)
    # Far better than predicting the mean training image (MSE ~0.067).
    mean_image = _images(mnist10k, "x_train").mean(0)
    assert mse < 0.7 * np.mean((mean_image - x) ** 2)


def test_super_resolution_render_pools_back_to_the_native_render(trained, mnist10k):
    model, _ = trained
    z = model.encode(_images(mnist10k, "x_test", 16))
    native = model.render(z, 28).numpy()
    np.testing.assert_array_equal(native, model.decode(z).numpy())
    high = model.render(z, 256)
    assert high.shape == (16, 256, 256, 1)
    pooled = tf.image.resize(high, (28, 28), method="area").numpy()  # average pooling 256 -> 28
    difference = np.mean((pooled - native) ** 2)
    assert difference < POOLED_MSE_THRESHOLD, difference
    assert np.abs(pooled - native).max() < POOLED_MAX_THRESHOLD
    assert difference < 0.01 * np.mean((native - _images(mnist10k, "x_test", 16)) ** 2)
    # A non-square render, and the same latents give the same pixels in any chunking.
    wide = model.render(z[:2], (20, 50)).numpy()
    assert wide.shape == (2, 20, 50, 1)
    np.testing.assert_allclose(wide[1:], model.render(z[1:2], (20, 50)).numpy(), atol=1e-6)


def test_coordinate_grid_is_pixel_centres_of_the_square():
    grid = coordinate_grid(2, 4)
    assert grid.shape == (8, 2) and grid.dtype == np.float32
    np.testing.assert_allclose(grid[:4, 0], -0.5)  # first row: y = -1 + 1/2
    np.testing.assert_allclose(grid[:4, 1], [-0.75, -0.25, 0.25, 0.75])
    big = coordinate_grid(256, 256)
    assert big.min() > -1.0 and big.max() < 1.0


def test_parameter_counts():
    def count(model):
        return sum(int(np.prod(v.shape)) for v in model.trainable_variables)

    # The authors' MNIST shape [2 + 32, 32, 32, 32, 32, 1]: a first sine layer,
    # 3 hidden 32->32 sine layers and a linear output = 1,120 + 3 x 1,056 + 33.
    assert count(keras_gon.ImplicitGON(hidden_units=32, num_layers=4, latent_dim=32)) == 4321
    # The paper's 4,385 is 64 = 2 x 32 more: a 36-dimensional input to the first
    # layer, i.e. this shape with a 34-dimensional latent. No layer-count
    # convention gives it with latent 32 (3 sine layers: 3,265; 5: 5,377).
    assert count(keras_gon.ImplicitGON(hidden_units=32, num_layers=4, latent_dim=34)) == 4385
    assert count(keras_gon.ImplicitGON(hidden_units=32, num_layers=3, latent_dim=32)) == 3265
    assert count(keras_gon.ImplicitGON(hidden_units=32, num_layers=5, latent_dim=32)) == 5377
    # The default: the authors' [34, 256, 256, 256, 256, 1].
    assert count(keras_gon.ImplicitGON()) == 8960 + 3 * 65792 + 257
    assert count(keras_gon.ImplicitGON(image_shape=(32, 32, 3), hidden_units=8, num_layers=1)) == (
        34 * 8 + 8 + 8 * 3 + 3
    )


def test_siren_layers_are_initialised_as_the_authors():
    model = keras_gon.ImplicitGON(hidden_units=64, num_layers=3, latent_dim=30)
    first, hidden, output = model.sine_layers[0], model.sine_layers[1], model.output_layer
    assert first.is_first and not hidden.is_first and not output.use_sine
    assert np.abs(first.kernel.numpy()).max() <= 1.0 / 32
    assert np.abs(hidden.kernel.numpy()).max() <= np.sqrt(6.0 / 64) / 30.0
    assert np.abs(output.kernel.numpy()).max() <= np.sqrt(6.0 / 64) / 30.0


def test_monte_carlo_subset_is_an_unbiased_estimate_of_the_grid_loss(mnist10k):
    keras.utils.set_random_seed(0)
    x = tf.constant(_images(mnist10k, "x_test", 8))
    for loss in ("sse", "mse"):
        model = keras_gon.ImplicitGON(
            hidden_units=16,
            num_layers=2,
            coordinate_fraction=0.25,
            inner_loss=loss,
            outer_loss=loss,
            seed=1,
        )
        z = tf.random.normal((8, 32))
        full = model.outer_losses(x, z, training=False).numpy()

        @tf.function
        def estimate(model=model, z=z):
            model._step_coordinates = model._sample_coordinates()
            try:
                return model.outer_losses(x, z, training=True)
            finally:
                model._step_coordinates = None

        estimates = np.array([estimate().numpy() for _ in range(100)])
        assert not np.allclose(estimates[0], full, rtol=0.01)  # a subset, not the grid
        np.testing.assert_allclose(estimates.mean(0), full, rtol=0.05)


def test_one_coordinate_subset_per_step_shared_by_both_passes(mnist10k):
    keras.utils.set_random_seed(0)
    model = keras_gon.ImplicitGON(hidden_units=8, num_layers=2, coordinate_fraction=0.25, seed=2)
    assert model.num_sampled_coordinates == 196
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    used = []
    grid_losses = model._grid_losses

    def recording(loss, data, latents, training):
        indices = model._step_coordinates if training else None
        used.append(None if indices is None else indices.numpy())
        return grid_losses(loss, data, latents, training)

    model._grid_losses = recording
    x = _images(mnist10k, "x_train", 96)
    model.fit(x, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert len(used) == 6  # 3 steps x (inner, outer)
    for step in range(3):
        inner, outer = used[2 * step], used[2 * step + 1]
        assert inner.shape == (196,) and len(np.unique(inner)) == 196
        np.testing.assert_array_equal(inner, outer)
    assert not np.array_equal(used[0], used[2])  # a new subset each step
    assert model._step_coordinates is None
    used.clear()
    model.evaluate(x[:32], verbose=0)
    # evaluation: every coordinate (the inner pass is the shared origin's linearised grid)
    assert used == [None]


def test_coordinate_fraction_trains_and_is_seeded(mnist10k):
    x = _images(mnist10k, "x_train", 320)
    histories = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = keras_gon.ImplicitGON(
            hidden_units=16, num_layers=2, coordinate_fraction=0.25, seed=3
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        histories.append(
            model.fit(x, batch_size=32, epochs=3, shuffle=False, verbose=0).history["loss"]
        )
    assert histories[0] == histories[1]
    assert histories[0][-1] < 0.8 * histories[0][0], histories[0]


def test_outer_gradient_matches_finite_differences_on_a_subset(mnist10k, float64):
    """Second-order gradients through sin and through the coordinate gather are exact."""
    keras.utils.set_random_seed(4)
    model = keras_gon.ImplicitGON(
        image_shape=(8, 8, 1),
        hidden_units=8,
        num_layers=2,
        latent_dim=4,
        coordinate_fraction=0.5,
        seed=5,
    )
    x = tf.image.resize(_images(mnist10k, "x_test", 4).astype("float64"), (8, 8))
    model._step_coordinates = model._sample_coordinates()  # one subset for every pass
    error = finite_difference_error(model, x, directions=1)
    model._step_coordinates = None
    assert error < 1e-6, f"relative error {error:.2e}"


def test_latent_statistics_pool_recent_steps_exactly():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(10, 50, 3)) @ np.diag([1.0, 2.0, 0.5]) + [1.0, -1.0, 0.0]
    callback = LatentStatistics(window=4)
    for batch in latents:
        centred = batch - batch.mean(0)
        callback._steps.append((len(batch), batch.mean(0), centred.T @ centred))
    mean, covariance, count = callback.statistics()
    recent = latents[-4:].reshape(-1, 3)
    assert count == 200
    np.testing.assert_allclose(mean, recent.mean(0), atol=1e-12)
    np.testing.assert_allclose(covariance, np.cov(recent, rowvar=False), atol=1e-12)


def test_fit_stores_the_statistics_of_the_last_steps_training_latents(mnist10k):
    keras.utils.set_random_seed(0)
    model = keras_gon.ImplicitGON(hidden_units=8, num_layers=2, latent_dim=4, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    latents_per_step = []
    outer_losses = model.outer_losses

    def recording(data, latents, training=False):
        if training:
            latents_per_step.append(latents.numpy())
        return outer_losses(data, latents, training)

    model.outer_losses = recording
    x = _images(mnist10k, "x_train", 6 * 16 + 5)  # 7 steps, the last one of 5 images
    model.fit(
        x, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[LatentStatistics(window=4)]
    )
    assert len(latents_per_step) == 7
    recent = np.concatenate(latents_per_step[-4:])
    assert float(model.latent_count.numpy()) == len(recent) == 53
    np.testing.assert_allclose(model.latent_mean.numpy(), recent.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        model.latent_covariance.numpy(), np.cov(recent, rowvar=False), rtol=1e-4, atol=1e-8
    )


def test_samples_are_seeded_images_from_the_latent_normal(trained):
    model, _ = trained
    # fit added LatentStatistics: the latents of the last 100 steps of 64.
    assert float(model.latent_count.numpy()) == 6400
    covariance = model.latent_covariance.numpy()
    np.testing.assert_allclose(covariance, covariance.T, atol=1e-6)
    samples = model.sample(16, seed=7).numpy()
    assert samples.shape == (16, 28, 28, 1)
    np.testing.assert_array_equal(samples, model.sample(16, seed=7).numpy())
    assert not np.array_equal(samples, model.sample(16, seed=8).numpy())
    assert model.sample(2, seed=0, resolution=64).shape == (2, 64, 64, 1)
    # With the statistics of some latents, samples decode latents of that normal.
    z = np.random.default_rng(0).normal(size=(500, 32)) * 0.01 + 0.02
    model.set_latent_statistics(z.mean(0), np.cov(z, rowvar=False), len(z))
    np.testing.assert_allclose(model.latent_mean.numpy(), z.mean(0), rtol=1e-6)
    with pytest.raises(InputError, match="shapes"):
        model.set_latent_statistics(np.zeros(3), np.eye(3), 10)


def test_sampling_needs_statistics():
    model = keras_gon.ImplicitGON(hidden_units=8, num_layers=1)
    with pytest.raises(InputError, match="no latent statistics"):
        model.sample(4)
    with pytest.raises(InputError, match="n must be"):
        model.sample(0)
    with pytest.raises(InputError, match="LatentStatistics needs"):
        gon = keras_gon.GON(latent_dim=8, width=4)
        gon.compile(optimizer="adam")
        gon.fit(
            np.zeros((8, 32, 32, 1), "float32"), epochs=1, verbose=0, callbacks=[LatentStatistics()]
        )


def _warm_up(model, x):
    """Traces the inference functions for relaxed (None) batch shapes first.

    A tf.function traced for one static batch size can round differently
    (~1e-8) from its relaxed-shape retrace, and a shape seen first keeps its
    own trace: both models are compared on relaxed traces.
    """
    for count in (1, 2):
        model.encode(x[:count])
        model.reconstruct(x[:count])
        model.render(np.zeros((count, model.latent_dim), "float32"), 64)


def test_save_and_load_give_identical_outputs(trained, mnist10k, tmp_path):
    model, _ = trained
    loaded = save_and_load(model, tmp_path / "igon.keras")
    assert isinstance(loaded, keras_gon.ImplicitGON)
    assert_same_training_state(model, loaded)
    x = _images(mnist10k, "x_test", 5)
    for each in (model, loaded):
        _warm_up(each, x)
    z = model.encode(x)
    np.testing.assert_array_equal(loaded.encode(x).numpy(), model.encode(x).numpy())
    np.testing.assert_array_equal(loaded.reconstruct(x).numpy(), model.reconstruct(x).numpy())
    np.testing.assert_array_equal(loaded.render(z, 64).numpy(), model.render(z, 64).numpy())
    np.testing.assert_array_equal(loaded.sample(4, seed=1).numpy(), model.sample(4, seed=1).numpy())
    loaded.fit(_images(mnist10k, "x_train", 128), batch_size=64, epochs=1, verbose=0)


def test_graph_level_render_and_sample_are_exported(tmp_path):
    from keras_gon.export import export_saved_model

    keras.utils.set_random_seed(0)
    model = keras_gon.ImplicitGON(hidden_units=8, num_layers=2, latent_dim=4)
    z = (0.1 * np.random.default_rng(0).normal(size=(5, 4))).astype("float32")
    model.set_latent_statistics(z.mean(0), np.cov(z, rowvar=False), len(z))
    rendered = model.render(z, 40).numpy()
    np.testing.assert_allclose(model.render_latents(z, 40).numpy(), rendered, atol=1e-6)
    latents = model.sample_latents(3, 5).numpy()
    np.testing.assert_array_equal(latents, model.sample_latents(3, 5).numpy())
    np.testing.assert_allclose(
        model.sample(3, seed=5).numpy(), model.render(latents).numpy(), atol=1e-6
    )
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "1")))
    images = served.signatures["render"](latents=tf.constant(z), resolution=tf.constant(40))[
        "images"
    ]
    np.testing.assert_allclose(images.numpy(), rendered, atol=1e-6)
    sampled = served.signatures["sample"](count=tf.constant(3), seed=tf.constant(5))["images"]
    # Served images are clipped to [0, 1], as render() and sample() clip; the raw SIREN is not.
    raw = model.decode_latents(latents).numpy()
    assert raw.min() < 0.0
    np.testing.assert_allclose(sampled.numpy(), np.clip(raw, 0.0, 1.0), atol=1e-5)
    np.testing.assert_allclose(sampled.numpy(), model.sample(3, seed=5).numpy(), atol=1e-5)


def test_config_round_trip():
    model = keras_gon.ImplicitGON(
        image_shape=(16, 16, 3),
        latent_dim=8,
        hidden_units=12,
        num_layers=2,
        w0=20.0,
        coordinate_fraction=0.5,
        inner_loss="sse",
        num_steps=2,
        step_size=0.5,
        seed=4,
    )
    config = model.get_config()
    assert config["image_shape"] == (16, 16, 3) and config["coordinate_fraction"] == 0.5
    assert config["w0"] == 20.0 and config["inner_loss"] == "sse" and config["outer_loss"] == "mse"
    assert keras_gon.ImplicitGON.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert revived.get_config() == config
    assert all(layer.w0 == 20.0 for layer in model.sine_layers)


def test_xla_and_eager_give_the_same_loss(mnist10k):
    x = _images(mnist10k, "x_train", 32)
    results = []
    for jit in (True, False):
        keras.utils.set_random_seed(0)
        model = keras_gon.ImplicitGON(hidden_units=4, num_layers=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
        assert model.jit_compile == jit
        model.train_on_batch(x)
        results.append(model.train_on_batch(x, return_dict=True)["loss"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)


def test_bad_images_latents_and_resolutions_are_refused(trained):
    model, _ = trained
    with pytest.raises(InputError, match="has 3 channels, the model expects 1"):
        model.encode(np.zeros((2, 28, 28, 3), "float32"))
    with pytest.raises(InputError, match=r"latents have shape \(2, 5\)"):
        model.render(np.zeros((2, 5)), 64)
    with pytest.raises(InputError, match="NaN"):
        model.decode(np.full((1, 32), np.nan))
    for resolution in (0, 5000, 2.5, (28,), "256"):
        with pytest.raises(InputError, match="resolution"):
            model.render(np.zeros((1, 32)), resolution)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_shape": (28, 28)}, "image_shape"),
        ({"image_shape": (0, 28, 1)}, "image_shape"),
        ({"hidden_units": 0}, "hidden_units"),
        ({"num_layers": 1.5}, "num_layers"),
        ({"coordinate_fraction": 0.0}, "coordinate_fraction"),
        ({"coordinate_fraction": 1.5}, "coordinate_fraction"),
        ({"w0": -1.0}, "w0"),
        ({"latent_dim": 0}, "latent_dim"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        keras_gon.ImplicitGON(**kwargs)


# --- the shared origin: F(c ⊕ 0) and its Jacobian once for the whole batch ----------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_steps": 2, "step_size": 0.5},
        {"inner_batch_reduction": "mean"},
        {"inner_loss": "sse"},
    ],
)
def test_shared_origin_gives_the_latents_and_gradients_of_the_batched_origin(
    mnist10k, float64, options
):
    keras.utils.set_random_seed(1)
    model = keras_gon.ImplicitGON(
        image_shape=(12, 12, 1), latent_dim=6, hidden_units=8, num_layers=3, seed=2, **options
    )
    assert model.shares_origin_in_training()
    x = tf.image.resize(_images(mnist10k, "x_test", 5).astype("float64"), (12, 12))
    shared, batched = origin_step(model, x, True, True), origin_step(model, x, True, False)
    assert_same_origin_step(
        shared, batched, statistics=False, smallest_latent=1e-4, latent_atol=1e-12
    )


def test_a_coordinate_subset_trains_with_the_batched_origin():
    """A training step on a coordinate subset evaluates the inner loss on that subset: the
    batched pass; evaluation (the whole grid) shares the origin."""
    model = keras_gon.ImplicitGON(
        image_shape=(8, 8, 1), latent_dim=4, hidden_units=8, num_layers=2, coordinate_fraction=0.5
    )
    assert not model.shares_origin_in_training()
    assert model.inner_losses_apply_inner_loss(False) and not model.inner_losses_apply_inner_loss(
        True
    )
    whole_grid = keras_gon.ImplicitGON(
        image_shape=(8, 8, 1), latent_dim=4, hidden_units=8, num_layers=2
    )
    assert whole_grid.shares_origin_in_training()


def test_implicit_gon_on_colour_images_has_three_outputs(cifar10_folder):
    """CIFAR-10 JPEGs (3 classes), 32x32x3, latent 16, 3 layers of 32, batch 32, 60 steps
    of Adam 1e-3: held-out MSE per pixel 0.350 -> 0.034 measured."""
    from helpers import train_on_folder

    keras.utils.set_random_seed(0)
    model = keras_gon.ImplicitGON(
        image_shape=(32, 32, 3), latent_dim=16, hidden_units=32, num_layers=3, seed=0
    )
    before, after, test = train_on_folder(model, cifar10_folder, 60, batch_size=32)
    assert after["loss"] < 0.08 < before["loss"]
    z = model.encode(next(iter(test))[:2])
    assert model.render(z, 64).shape == (2, 64, 64, 3)  # super-resolution in colour

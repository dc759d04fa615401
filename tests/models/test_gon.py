"""keras_gon.GON: training on real MNIST, detach baseline, XLA, save/load, input checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError

from helpers import (
    assert_same_origin_step,
    assert_same_outputs,
    assert_same_training_state,
    assert_spatial_latents_learn_and_survive_saving,
    digits16,
    finite_difference_error,
    fit_mnist32,
    held_out_loss_before_and_after,
    origin_step,
    randomize_normalizations,
    save_and_load,
)

# Budget: 3 epochs of mnist10k (375 steps), latent 32, width 16, batch 64,
# Adam 1e-4, seed 0. Measured held-out SSE per image (TF 2.21, CPU):
# GON 18.5, detached GON 23.3 (ratio 1.26; after 1 epoch 44.7 vs 49.1,
# after 5 epochs 12.2 vs 16.6).
EPOCHS = 3
HELD_OUT_SSE_THRESHOLD = 25.0
DETACH_MARGIN = 1.15


def _train(mnist32, make_batches, **options):
    model, result = fit_mnist32(keras_gon.GON, mnist32, make_batches, options, epochs=EPOCHS)
    return model, result["held_out"]["loss"]


@pytest.fixture(scope="module")
def trained(mnist32, make_batches):
    return _train(mnist32, make_batches)


def test_held_out_sse_after_three_epochs(trained):
    _, sse = trained
    assert sse < HELD_OUT_SSE_THRESHOLD, sse


def test_gon_beats_detached_gon(trained, mnist32, make_batches):
    _, sse = trained
    _, detached_sse = _train(mnist32, make_batches, detach=True)
    assert detached_sse > DETACH_MARGIN * sse, (sse, detached_sse)


def test_encode_decode_reconstruct_agree_and_reconstruct_the_digits(trained, mnist32):
    model, _ = trained
    x = mnist32[1][:5]
    z = model.encode(x)
    assert z.shape == (5, 32) and z.dtype == tf.float32
    x_hat = model.decode(z)
    assert x_hat.shape == (5, 32, 32, 1)
    # each reconstruction is closer to its own digit than to the other four
    errors = ((x_hat.numpy()[:, None] - x[None]) ** 2).sum(axis=(2, 3, 4))
    np.testing.assert_array_equal(errors.argmin(axis=1), np.arange(5), err_msg=str(errors))
    np.testing.assert_allclose(model.reconstruct(x).numpy(), x_hat.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), x_hat.numpy(), rtol=1e-5, atol=1e-6)
    # uint8 input is scaled like the data pipeline scales it
    x_uint8 = np.round(x * 255).astype("uint8")
    np.testing.assert_allclose(
        model.encode(x_uint8).numpy(), model.encode(x_uint8 / 255.0).numpy(), rtol=1e-6
    )


def test_save_and_load_give_identical_outputs(trained, mnist32, tmp_path):
    model, _ = trained
    loaded = save_and_load(model, tmp_path / "gon.keras")
    assert isinstance(loaded, keras_gon.GON)
    assert_same_outputs(model, loaded, mnist32[1][:7])
    # The optimizer state comes back too: training can go on.
    assert_same_training_state(model, loaded)
    loaded.fit(mnist32[0][:128], batch_size=64, epochs=1, verbose=0)


def test_config_round_trip_and_serialization():
    model = keras_gon.GON(
        image_shape=(16, 16, 3),
        latent_dim=8,
        width=4,
        activation="selu",
        normalization="layer",
        num_steps=2,
        step_size=0.5,
        detach=True,
        origin_stddev=0.1,
        seed=4,
    )
    config = model.get_config()
    clone = keras_gon.GON.from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(model)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert revived.get_config() == config
    # the decoder's options are stored once, in its own config
    assert config["decoder"]["config"]["image_shape"] == (16, 16, 3) and config["num_steps"] == 2
    assert "image_shape" not in config and "width" not in config


@pytest.mark.parametrize("size, channels, params", [(32, 1, 74321), (64, 3, 0)])
def test_architecture(size, channels, params):
    model = keras_gon.GON(image_shape=(size, size, channels), latent_dim=32, width=16)
    out = model.decode(np.zeros((2, 32), "float32"))
    assert out.shape == (2, size, size, channels)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    if params:  # the authors' PyTorch GON at nz=32, ngf=16 has 74,321 parameters
        assert trainable == params


def test_xla_and_eager_give_the_same_loss(mnist32):
    x = mnist32[0][:64]
    results = []
    for jit in (True, False):
        keras.utils.set_random_seed(0)
        model = keras_gon.GON(latent_dim=32, width=16)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
        model.train_on_batch(x)
        results.append(model.train_on_batch(x, return_dict=True)["loss"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)


def test_non_finite_images_stop_training_with_one_line(mnist32):
    """(A non-finite loss from valid pixels: tests/test_reliability.py.)"""
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=8, width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    x = mnist32[0][:640].copy()
    x[128:192] = np.nan  # the third batch of the first epoch
    with pytest.raises(InputError, match="non-finite"):
        model.fit(x, batch_size=64, verbose=0)  # arrays are checked up front
    # A dataset is a stream: its batches are checked as they come, in the pipeline.
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(64)
    with pytest.raises(InputError, match="non-finite"):
        model.fit(dataset, epochs=3, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 28, 28), "float64")[..., None, None], r"shape \(2, 28, 28, 1, 1\)"),
        (np.zeros((2, 32, 32, 3), "float32"), "3 channels"),
        (np.full((2, 32, 32, 1), np.nan, "float32"), "non-finite"),
        (np.full((2, 32, 32, 1), 300.0, "float32"), "300"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_bad_images_are_refused_clearly(trained, images, message):
    model, _ = trained
    with pytest.raises(InputError, match=message):
        model.encode(images)


def test_bad_latents_and_batches_are_refused(trained, mnist10k):
    model, _ = trained
    with pytest.raises(InputError, match=r"latents have shape \(2, 5\)"):
        model.decode(np.zeros((2, 5)))
    with pytest.raises(InputError, match="NaN"):
        model.decode(np.full((1, 32), np.nan))
    wrong_channels = np.repeat(mnist10k["x_train"][:64, :, :, None], 3, axis=-1)
    with pytest.raises(InputError, match="has 3 channels, the model expects 1"):
        model.fit(wrong_channels, batch_size=32, verbose=0)
    with pytest.raises(InputError, match=r"data has shape \(None, 28, 28, 3\)"):
        model.evaluate(tf.data.Dataset.from_tensor_slices(wrong_channels).batch(8), verbose=0)
    with pytest.raises(InputError, match="expected \\(N, H, W\\) or \\(N, H, W, C\\)"):
        model.fit(np.zeros((64, 32), "float32"), verbose=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_shape": (30, 30, 1)}, "power of two"),
        ({"image_shape": (32, 16, 1)}, "square"),
        ({"width": 0}, "width"),
        ({"activation": "nope"}, "unknown activation"),
        ({"normalization": "batchnorm"}, "unknown normalization"),
        ({"latent_dim": 30, "latent_map_size": 4}, r"latent_dim=30 .*latent_map_size²=16"),
        ({"latent_map_size": 2}, "latent_map_size must be 1 .*, got 2"),
        ({"latent_dim": 1024, "latent_map_size": 32}, "latent_map_size must be 1 .*, got 32"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        keras_gon.GON(**kwargs)


def test_compile_refuses_a_loss():
    with pytest.raises(InputError, match="inner_loss/outer_loss"):
        keras_gon.GON(latent_dim=8, width=4).compile(loss="mse")


def test_the_sse_latent_is_an_affine_function_of_the_image(mnist32):
    """z = -∇z0 SSE(x, F(z0)) = 2 J(0)ᵀ (x - F(0)) at a shared origin (eq. 8): a GON's
    encoder is affine in x (REPRODUCTION.md's explanation of GON vs AE by latent size)."""
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=8, width=4)
    a, b = mnist32[1][:16], mnist32[1][16:32]
    mixed = model.encode(0.3 * a + 0.7 * b).numpy()
    expected = 0.3 * model.encode(a).numpy() + 0.7 * model.encode(b).numpy()
    np.testing.assert_allclose(mixed, expected, atol=1e-5 * np.abs(mixed).max())
    batch_norm = keras_gon.GON(latent_dim=8, width=4, normalization="batch")
    batch_norm.compile(optimizer="adam")
    batch_norm.fit(mnist32[0][:64], batch_size=64, verbose=0)  # moving statistics move
    mixed = batch_norm.encode(0.3 * a + 0.7 * b).numpy()
    expected = 0.3 * batch_norm.encode(a).numpy() + 0.7 * batch_norm.encode(b).numpy()
    np.testing.assert_allclose(mixed, expected, atol=1e-4 * np.abs(mixed).max())


# --- colour and larger images, from real image folders --------------------------------
# Budgets and figures measured (TF 2.21, CPU, seed 0, Adam 1e-3): CIFAR-10 (3 classes,
# 300 JPEGs), 32x32x3, latent 32, width 8, batch 32, 60 steps: held-out SSE 235 -> 90
# (seed 1: 236 -> 85); COIL-20 (4 objects), 128x128x1, latent 16, width 4, batch 16,
# 30 steps: 2712 -> 1695; CelebA (320 faces), 64x64x3, latent 32, width 8, batch 32,
# 40 steps: 1107 -> 432.


def test_gon_trains_on_colour_cifar10_jpegs(cifar10_folder):
    from helpers import train_on_folder

    keras.utils.set_random_seed(0)
    model = keras_gon.GON(image_shape=(32, 32, 3), latent_dim=32, width=8, seed=0)
    before, after, test = train_on_folder(model, cifar10_folder, 60, batch_size=32)
    assert after["loss"] < 130.0 < before["loss"]
    images = next(iter(test))
    assert model.reconstruct(images[:4]).shape == (4, 32, 32, 3)


def test_gon_trains_at_128_on_coil20(coil20_folder):
    from helpers import train_on_folder

    keras.utils.set_random_seed(0)
    model = keras_gon.GON(image_shape=(128, 128, 1), latent_dim=16, width=4, seed=0)
    assert len(model.decoder.convs) == 1 + 5  # one more stride-2 block per doubling
    before, after, _ = train_on_folder(model, coil20_folder, 30, batch_size=16, image_size=128)
    assert after["loss"] < 2200.0 < before["loss"]


def test_gon_trains_at_64_on_celeba(celeba_folder):
    from helpers import train_on_folder

    keras.utils.set_random_seed(0)
    model = keras_gon.GON(image_shape=(64, 64, 3), latent_dim=32, width=8, seed=0)
    before, after, test = train_on_folder(model, celeba_folder, 40, batch_size=32, image_size=64)
    assert after["loss"] < 650.0 < before["loss"]
    assert model.encode(next(iter(test))[:2]).shape == (2, 32)


# --- spatial latents (the paper's fig. 10a) ----------------------------------------

SPATIAL_STEPS = 30  # of batch 64, Adam 1e-3: held-out SSE per image 210 -> 126 (k = 4, width 4)


def _spatial_gon(**options):
    """A tiny GON with a 4x4x2 latent map at a generic point (`randomize_normalizations`)."""
    keras.utils.set_random_seed(1)
    model = keras_gon.GON(
        image_shape=(16, 16, 1), latent_dim=32, width=4, latent_map_size=4, **options
    )
    randomize_normalizations(model)
    return model


@pytest.mark.parametrize("size, channels, k", [(32, 1, 4), (32, 1, 8), (64, 3, 4), (64, 3, 8)])
def test_spatial_latent_shapes(size, channels, k):
    model = keras_gon.GON(
        image_shape=(size, size, channels),
        latent_dim=2 * k * k,
        width=4,
        latent_map_size=k,
        share_origin=True,
    )
    x = np.random.default_rng(0).random((3, size, size, channels)).astype("float32")
    z = model.encode(x)
    assert z.shape == (3, 2 * k * k)  # latents stay flat vectors
    assert model.decode(z).shape == model.reconstruct(x).shape == (3, size, size, channels)
    assert model.decoder.convs[0].kernel.shape[-1] == 2  # the first conv takes the (k, k, 2) map
    assert model.shares_origin_in_training()


@pytest.mark.parametrize("share_origin", [True, False], ids=["shared", "batched"])
@pytest.mark.parametrize("normalization", ["layer", "batch"])
def test_spatial_latent_outer_gradient_matches_finite_differences(
    float64, mnist10k, normalization, share_origin
):
    model = _spatial_gon(normalization=normalization, share_origin=share_origin)
    assert model.shares_origin_in_training() == share_origin
    error = finite_difference_error(model, digits16(mnist10k))
    assert error < 1e-5, f"{normalization}: relative error {error:.2e}"


@pytest.mark.parametrize("normalization", ["layer", "batch", "batch_frozen_origin"])
def test_spatial_latent_shared_origin_gives_the_batched_origins_latents(
    float64, mnist10k, normalization
):
    model = _spatial_gon(normalization=normalization)
    x = digits16(mnist10k)
    for training in (True, False):
        shared = origin_step(model, x, training, share_origin=True)
        batched = origin_step(model, x, training, share_origin=False)
        assert_same_origin_step(shared, batched)


@pytest.fixture(scope="module")
def trained_spatial(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=32, width=4, latent_map_size=4, seed=0)
    return model, *held_out_loss_before_and_after(model, mnist32, SPATIAL_STEPS)


def test_spatial_latent_gon_learns_and_survives_saving(trained_spatial, mnist32, tmp_path):
    assert_spatial_latents_learn_and_survive_saving(
        trained_spatial, mnist32[1][:7], tmp_path / "spatial.keras"
    )


def test_configs_from_before_spatial_latents_load_as_vector_latents():
    model = keras_gon.GON(image_shape=(16, 16, 1), latent_dim=8, width=2)
    config = model.get_config()
    assert config["decoder"]["config"]["latent_map_size"] == 1
    del config["decoder"]["config"]["latent_map_size"]
    clone = keras_gon.GON.from_config(config)
    assert clone.decoder.latent_map_size == 1
    assert [w.path for w in clone.weights] == [w.path for w in model.weights]
    spatial = keras_gon.GON(image_shape=(16, 16, 1), latent_dim=16, width=2, latent_map_size=4)
    assert keras_gon.GON.from_config(spatial.get_config()).get_config() == spatial.get_config()

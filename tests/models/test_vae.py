"""keras_gon.VAE: the variational GON's baseline, same decoder and loss, same API."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError

from helpers import (
    assert_affine_encoder_survives_saving,
    assert_same_outputs,
    assert_same_training_state,
    fit_mnist32,
    save_and_load,
    xla_and_eager_figures,
)

# Budget: 1 epoch of mnist10k (125 steps), latent 32, width 16, batch 64, Adam 1e-4,
# seed 0, no XLA, the default discretised logistic likelihood. Measured held-out
# bits/dim (TF 2.21, CPU): 2.650 (VariationalGON: 2.994).
BITS_PER_DIM_THRESHOLD = 2.8
PIXELS = 32 * 32


@pytest.fixture(scope="module")
def trained(mnist32, make_batches):
    # no XLA: its compilation costs more than the epoch (XLA: test_xla_and_eager_agree)
    model, result = fit_mnist32(
        keras_gon.VAE, mnist32, make_batches, dict(seed=0), jit_compile=False, validate=True
    )
    return model, result["history"], result["held_out"]


def test_held_out_bits_per_dim_after_one_epoch(trained):
    _, _, held_out = trained
    assert held_out["bits_per_dim"] < BITS_PER_DIM_THRESHOLD, held_out


def test_reports_the_same_elbo_terms_as_the_variational_gon(trained):
    model, history, held_out = trained
    names = ["loss", "reconstruction_loss", "kl_loss", "bits_per_dim"]
    assert [m.name for m in model.metrics] == names
    # the VariationalGON reports the same, plus its inner loss
    vgon = keras_gon.VariationalGON(image_shape=(16, 16, 1), latent_dim=4, width=2)
    assert [m.name for m in vgon.metrics] == ["loss", "inner_loss", *names[1:]]
    for name in names:
        assert f"val_{name}" in history
    elbo = held_out["reconstruction_loss"] + held_out["kl_loss"]
    assert held_out["loss"] == pytest.approx(elbo, rel=1e-5)
    assert held_out["bits_per_dim"] == pytest.approx(elbo / (PIXELS * math.log(2)), rel=1e-5)
    assert held_out["kl_loss"] > 1.0


def test_loss_is_the_shared_negative_elbo(trained, mnist32):
    model, _, _ = trained
    x = tf.constant(mnist32[1][:6])
    model.reparameterization.seed_generator.state.assign([7, 0])
    terms = model.elbo_terms(x)
    model.reparameterization.seed_generator.state.assign([7, 0])
    mean, log_variance = model.posterior(x)
    z = model.reparameterization([mean, log_variance], sample=True)
    expected = keras_gon.losses.negative_elbo(x, model.decoder(z), mean, log_variance)
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name].numpy(), value.numpy(), rtol=1e-6, err_msg=name)


def test_encode_decode_reconstruct_and_batch_independence(trained, mnist32):
    model, _, _ = trained
    x = mnist32[1][:8]
    z = model.encode(x).numpy()
    assert z.shape == (8, 32)
    np.testing.assert_allclose(z, model.posterior(tf.constant(x))[0].numpy(), rtol=1e-5, atol=1e-6)
    alone = np.concatenate([model.encode(x[i : i + 1]).numpy() for i in range(3)])
    np.testing.assert_allclose(alone, z[:3], rtol=1e-4, atol=1e-5)
    reconstruction = model.reconstruct(x).numpy()
    assert reconstruction.shape == (8, 32, 32, 1)
    # the reconstruction is the likelihood's location at z = μ, clipped to the pixel range
    outputs = model.decoder(z, training=False).numpy()
    assert outputs.shape == (8, 32, 32, 2)  # the location, then the log-scale
    np.testing.assert_allclose(
        np.clip(outputs[..., :1], 0, 1), reconstruction, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(model.decode(z).numpy(), reconstruction, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.reconstruct(x).numpy(), reconstruction)  # μ, no noise


def test_xla_and_eager_agree(mnist32):
    x = tf.image.resize(mnist32[1][:32], (8, 8)).numpy().clip(0, 1)  # 8x8: quick to compile

    def build():
        keras.utils.set_random_seed(0)
        return keras_gon.VAE(image_shape=(8, 8, 1), latent_dim=4, width=2, seed=0)

    xla, eager = xla_and_eager_figures(build, x)
    # the KL is deterministic; the reconstruction term draws z ~ q with another RNG under XLA
    assert xla["kl_loss"] == pytest.approx(eager["kl_loss"], rel=1e-4)
    assert xla["bits_per_dim"] == pytest.approx(eager["bits_per_dim"], rel=0.05)
    assert np.isfinite(xla["train_loss"]) and np.isfinite(eager["train_loss"])


def test_sample_shapes_range_and_seeding(trained):
    model, _, _ = trained
    images = model.sample(16, seed=1).numpy()
    assert images.shape == (16, 32, 32, 1) and images.dtype == np.float32
    assert images.std(axis=0).mean() > 1e-3
    np.testing.assert_array_equal(model.sample(16, seed=1).numpy(), images)
    assert not np.allclose(model.sample(16, seed=2).numpy(), images)
    assert not np.allclose(model.sample(4).numpy(), model.sample(4).numpy())
    # the graph-level latents (for export) are the ones `sample` decodes
    latents = model.sample_latents(tf.constant(16), tf.constant(1))
    np.testing.assert_allclose(model.decode(latents.numpy()).numpy(), images, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="number of samples"):
        model.sample(-1)


def test_save_and_load_give_identical_outputs(trained, mnist32, tmp_path):
    model, _, _ = trained
    loaded = save_and_load(model, tmp_path / "vae.keras")
    assert isinstance(loaded, keras_gon.VAE)
    assert_same_outputs(model, loaded, mnist32[1][:7], sample=True)
    assert_same_training_state(model, loaded)


def test_parameters_encoder_plus_the_gons_decoder():
    model = keras_gon.VAE(image_shape=(32, 32, 1), latent_dim=32, width=16)
    encoder = sum(int(np.prod(v.shape)) for v in model.encoder.trainable_variables)
    decoder = sum(int(np.prod(v.shape)) for v in model.decoder.trainable_variables)
    # convs 1->16->32->64 (4x4, stride 2, layer norm) and 64 -> 2 x 32 (4x4, valid)
    assert encoder == (16 * 16 + 16 + 32) + (16 * 32 * 16 + 32 + 64) + (32 * 64 * 16 + 64 + 128) + (
        64 * 64 * 16 + 64
    )
    # the GON's decoder, with the discretised logistic's log-scale as a second output channel
    assert decoder == 74321 + 16 * 16 + 1
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == encoder + decoder


def test_trains_under_kl_weight_and_gaussian_likelihood_without_xla(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.VAE(
        image_shape=(16, 16, 1),
        latent_dim=8,
        width=4,
        likelihood="gaussian",
        likelihood_stddev=0.2,
        kl_weight=0.5,
        seed=1,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    x = tf.image.resize(mnist32[0][:256], (16, 16)).numpy().clip(0, 1)
    history = model.fit(x, batch_size=64, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0], history["loss"]
    for recon, kl, loss in zip(history["reconstruction_loss"], history["kl_loss"], history["loss"]):
        assert loss == pytest.approx(recon + 0.5 * kl, rel=1e-4)


def test_config_round_trip():
    model = keras_gon.VAE(
        image_shape=(16, 16, 3),
        latent_dim=8,
        width=4,
        normalization="group",
        likelihood="gaussian",
        likelihood_stddev=0.05,
        kl_weight=0.5,
        seed=3,
    )
    config = model.get_config()
    assert keras_gon.VAE.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert revived.get_config() == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"likelihood": "poisson"}, "unknown likelihood"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"image_shape": (32, 16, 1)}, "square"),
        ({"latent_dim": 0}, "latent_dim"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        keras_gon.VAE(**kwargs)


def test_bad_inputs_are_refused(trained, mnist10k):
    model, _, _ = trained
    with pytest.raises(InputError, match="has 2 channels, the model expects 1"):
        model.encode(np.zeros((2, 28, 28, 2), "float32"))
    with pytest.raises(InputError, match="non-finite"):
        model.reconstruct(np.full((2, 32, 32, 1), np.nan, "float32"))
    with pytest.raises(InputError, match=r"latents have shape \(2, 5\)"):
        model.decode(np.zeros((2, 5)))
    with pytest.raises(InputError, match="non-finite"):
        model.fit(np.full((64, 28, 28), np.nan, "float32"), batch_size=32, verbose=0)
    with pytest.raises(InputError, match="no loss"):
        model.compile(loss="mse")


# 60 steps of mnist10k at batch 64, latent 8, width 4, Adam 1e-3, seed 0, no XLA, linear
# encoder. Measured held-out bits/dim: 2.930 (untrained: 3.445).
LINEAR_STEPS = 60
LINEAR_BITS_PER_DIM_THRESHOLD = 3.1


def test_linear_encoder_trains_and_round_trips(mnist32, make_batches, tmp_path):
    """encoder="linear": [μ, log σ²] an affine map of the image (a variational GON's class)."""
    keras.utils.set_random_seed(0)
    model = keras_gon.VAE(latent_dim=8, width=4, encoder="linear", seed=0)
    assert isinstance(model.encoder, keras_gon.layers.LinearEncoder)
    assert model.encoder.output_dim == 16 and model.get_config()["encoder"] == "linear"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    test_ds = make_batches(mnist32[1][:1000], 500, shuffle=False)
    untrained = model.evaluate(test_ds, verbose=0, return_dict=True)["bits_per_dim"]
    model.fit(make_batches(mnist32[0][: LINEAR_STEPS * 64], 64, shuffle=True), epochs=1, verbose=0)
    held_out = model.evaluate(test_ds, verbose=0, return_dict=True)["bits_per_dim"]
    print("linear-encoder VAE held-out bits/dim", held_out, "untrained", untrained)
    assert held_out < LINEAR_BITS_PER_DIM_THRESHOLD
    assert_affine_encoder_survives_saving(model, mnist32[1], tmp_path / "linear.keras")


def test_spatial_latents_split_the_posterior_by_channel(mnist32):
    """With a k x k latent map (fig. 10a) the encoder's (k, k, 2c) map holds μ in its first
    c channels and log σ² in its last c at each position, as the decoder reshapes z."""
    keras.utils.set_random_seed(0)
    model = keras_gon.VAE(latent_dim=32, width=4, latent_map_size=4, seed=0)
    x = mnist32[1][:3]
    mean, log_variance = model.posterior(x)
    outputs = np.reshape(model.encoder(x), (3, 4, 4, 4))
    np.testing.assert_array_equal(np.reshape(mean, (3, 4, 4, 2)), outputs[..., :2])
    np.testing.assert_array_equal(np.reshape(log_variance, (3, 4, 4, 2)), outputs[..., 2:])
    assert model.sample(2, seed=0).shape == (2, 32, 32, 1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    history = model.fit(mnist32[0][:64], batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1])

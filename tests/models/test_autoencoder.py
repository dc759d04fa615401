"""keras_gon.ConvAutoencoder: the GON's decoder plus a mirrored encoder, on real MNIST."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_gon
from keras_gon.errors import InputError

from helpers import (
    assert_affine_encoder_survives_saving,
    assert_same_outputs,
    assert_spatial_latents_learn_and_survive_saving,
    autoencoder_after_steps,
    held_out_loss_before_and_after,
    save_and_load,
    trained_autoencoder_fixture,
)

# 60 steps of mnist10k at batch 64, latent 8, width 4, Adam 1e-3, seed 0.
# Measured held-out SSE per image: 76.4 (untrained: ~120); with encoder="linear" 72.9.
STEPS = 60
HELD_OUT_SSE_THRESHOLD = 90.0


trained = trained_autoencoder_fixture(keras_gon.ConvAutoencoder, STEPS)


def test_trains_and_evaluates_with_the_sse_metric(trained):
    _, held_out = trained
    assert set(held_out) == {"loss"}
    print("autoencoder held-out SSE", held_out["loss"])
    assert held_out["loss"] < HELD_OUT_SSE_THRESHOLD


def test_shares_the_gon_decoder_and_mirrors_it(trained):
    model, _ = trained
    gon = keras_gon.GON(latent_dim=8, width=4)
    assert [w.shape for w in model.decoder.weights] == [w.shape for w in gon.decoder.weights]
    encoder_kernels = [conv.kernel.shape for conv in model.encoder.convs]
    decoder_kernels = [conv.kernel.shape for conv in reversed(model.decoder.convs)]
    assert encoder_kernels == decoder_kernels


def test_encode_decode_reconstruct(trained, mnist32):
    model, _ = trained
    x = mnist32[1][:5]
    z = model.encode(x)
    assert z.shape == (5, 8)
    np.testing.assert_allclose(model.reconstruct(x).numpy(), model.decode(z).numpy(), atol=1e-6)


def test_save_and_load_give_identical_outputs(trained, mnist32, tmp_path):
    model, _ = trained
    loaded = save_and_load(model, tmp_path / "ae.keras")
    assert isinstance(loaded, keras_gon.ConvAutoencoder)
    assert_same_outputs(model, loaded, mnist32[1][:7])


def test_refuses_origin_gradient_options():
    with pytest.raises(InputError, match="no origin gradient.*num_steps"):
        keras_gon.ConvAutoencoder(num_steps=10)


def test_linear_encoder_trains_and_round_trips(mnist32, make_batches, tmp_path):
    """encoder="linear": z an affine map of the image (the class of a GON's encoder)."""
    model, held_out = autoencoder_after_steps(
        keras_gon.ConvAutoencoder, mnist32, make_batches, STEPS, encoder="linear"
    )
    assert isinstance(model.encoder, keras_gon.layers.LinearEncoder)
    assert model.get_config()["encoder"] == "linear"
    print("linear-encoder autoencoder held-out SSE", held_out["loss"])
    assert held_out["loss"] < HELD_OUT_SSE_THRESHOLD
    assert_affine_encoder_survives_saving(model, mnist32[1], tmp_path / "linear.keras")


def test_unknown_encoder_is_named():
    with pytest.raises(InputError, match="encoder 'mlp'"):
        keras_gon.ConvAutoencoder(latent_dim=8, width=4, encoder="mlp")


# --- spatial latents (the paper's fig. 10a) ----------------------------------------

SPATIAL_STEPS = 30  # of batch 64, Adam 1e-3: held-out SSE per image 229 -> 128 (k = 4, width 4)


@pytest.fixture(scope="module")
def trained_spatial(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.ConvAutoencoder(latent_dim=32, width=4, latent_map_size=4, seed=0)
    return model, *held_out_loss_before_and_after(model, mnist32, SPATIAL_STEPS)


def test_spatial_latent_encoder_mirrors_the_decoder(trained_spatial, mnist32):
    model, _, _ = trained_spatial
    assert model.encoder.output_map_size == model.decoder.latent_map_size == 4
    encoder_kernels = [conv.kernel.shape for conv in model.encoder.convs]
    decoder_kernels = [conv.kernel.shape for conv in reversed(model.decoder.convs)]
    assert encoder_kernels == decoder_kernels and decoder_kernels[-1] == (4, 4, 8, 2)
    assert model.encode(mnist32[1][:5]).shape == (5, 32)


def test_spatial_latent_autoencoder_learns_and_survives_saving(trained_spatial, mnist32, tmp_path):
    loaded = assert_spatial_latents_learn_and_survive_saving(
        trained_spatial, mnist32[1][:7], tmp_path / "spatial.keras"
    )
    assert loaded.encoder.output_map_size == 4


def test_spatial_latents_with_a_linear_encoder(mnist32):
    model = keras_gon.ConvAutoencoder(latent_dim=32, width=4, latent_map_size=4, encoder="linear")
    x = mnist32[1][:3]
    assert model.encode(x).shape == (3, 32) and model.reconstruct(x).shape == (3, 32, 32, 1)


def test_spatial_latent_size_not_divisible_is_refused():
    with pytest.raises(InputError, match=r"latent_dim=8 .*latent_map_size²=16"):
        keras_gon.ConvAutoencoder(latent_dim=8, width=4, latent_map_size=4)

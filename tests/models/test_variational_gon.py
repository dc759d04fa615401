"""keras_gon.VariationalGON: the ELBO on real MNIST, its terms and β, sampling, save/load."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon import losses as gon_losses
from keras_gon.callbacks import KLWarmup
from keras_gon.errors import InputError

from helpers import (
    assert_same_outputs,
    assert_same_training_state,
    finite_difference_error,
    fit_mnist32,
    xla_and_eager_figures,
)

# Budget: 1 epoch of mnist10k (125 steps), latent 32, width 16, batch 64, Adam 1e-4,
# seed 0, no XLA, the default discretised logistic likelihood (8-bit bits/dim) and
# step size 1/64. Measured held-out bits/dim (TF 2.21, CPU): 2.994 (untrained: 3.60;
# the VAE: 2.650). After 3 epochs with XLA (slow test below): 2.67.
BITS_PER_DIM_THRESHOLD = 3.15
UNTRAINED_BITS_PER_DIM = 3.4
BITS_PER_DIM_THRESHOLD_3_EPOCHS = 2.85
PIXELS = 32 * 32
ELBO_TERMS = ("reconstruction_loss", "kl_loss", "bits_per_dim")


def _train(mnist32, make_batches, epochs, jit_compile=True):
    model, result = fit_mnist32(
        keras_gon.VariationalGON,
        mnist32,
        make_batches,
        dict(seed=0),
        jit_compile=jit_compile,
        before=True,
        validate=True,
        epochs=epochs,
    )
    return model, result["history"], result["held_out"], result["before"]


@pytest.fixture(scope="module")
def trained(mnist32, make_batches):
    # no XLA: its compilation costs more than the epoch (XLA: test_xla_and_eager_agree)
    return _train(mnist32, make_batches, epochs=1, jit_compile=False)


def _tiny(**kwargs):
    keras.utils.set_random_seed(1)
    return keras_gon.VariationalGON(
        image_shape=(16, 16, 1), latent_dim=8, width=4, seed=0, **kwargs
    )


def _tiny_batch(mnist10k, count=8, dtype="float32"):
    x = tf.image.resize(mnist10k["x_test"][:count, :, :, None] / 255.0, (16, 16))
    return tf.cast(tf.clip_by_value(x, 0.0, 1.0), dtype)


def test_held_out_bits_per_dim_after_one_epoch(trained):
    _, _, held_out, untrained = trained
    assert held_out["bits_per_dim"] < BITS_PER_DIM_THRESHOLD, held_out
    assert untrained["bits_per_dim"] > UNTRAINED_BITS_PER_DIM, untrained


@pytest.mark.slow
def test_held_out_bits_per_dim_after_three_epochs(mnist32, make_batches):
    _, _, held_out, _ = _train(mnist32, make_batches, epochs=3)
    assert held_out["bits_per_dim"] < BITS_PER_DIM_THRESHOLD_3_EPOCHS, held_out


def test_fit_and_evaluate_report_the_elbo_terms(trained):
    model, history, held_out, _ = trained
    for name in ("loss", "inner_loss", *ELBO_TERMS):
        assert name in history and f"val_{name}" in history, name
        assert name in held_out
    # β = 1: the loss is the negative ELBO, and bits/dim is that over D ln 2.
    elbo = held_out["reconstruction_loss"] + held_out["kl_loss"]
    assert held_out["loss"] == pytest.approx(elbo, rel=1e-5)
    assert held_out["bits_per_dim"] == pytest.approx(elbo / (PIXELS * math.log(2)), rel=1e-5)
    assert held_out["kl_loss"] > 1.0 and held_out["reconstruction_loss"] > 0
    assert [m.name for m in model.metrics] == ["loss", "inner_loss", *ELBO_TERMS]


def test_kl_weight_weighs_the_kl_in_the_loss_not_in_bits_per_dim(trained, mnist32, make_batches):
    model, _, _, _ = trained
    model.set_kl_weight(0.25)
    try:  # batches of 250 as in training's validation: no new compilation
        results = model.evaluate(
            make_batches(mnist32[1][:500], 250, shuffle=False), verbose=0, return_dict=True
        )
    finally:
        model.set_kl_weight(1.0)
    recon, kl = results["reconstruction_loss"], results["kl_loss"]
    assert results["loss"] == pytest.approx(recon + 0.25 * kl, rel=1e-5)
    assert results["bits_per_dim"] == pytest.approx((recon + kl) / (PIXELS * math.log(2)), rel=1e-5)


def test_inner_loss_is_the_negative_elbo_plus_the_origin_prior(trained, mnist32):
    # eq. 10: L_inner(z) = -ELBO(x; F(z)) - log N(z; 0, 2I), whose gradient adds z / 2.
    model, _, _, _ = trained
    x = tf.constant(mnist32[1][:6])
    z = tf.constant(np.random.default_rng(0).normal(size=(6, 32)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        inner = model.inner_losses(x, z, training=False)
        reconstruction, mean, log_variance = model.decode_with_posterior(z, inner_pass=True)
        elbo = model.elbo_losses(x, reconstruction, mean, log_variance)["loss"]
        inner_total, elbo_total = tf.reduce_sum(inner), tf.reduce_sum(elbo)
    prior = 0.5 * tf.reduce_sum(z**2, axis=-1) / 2.0 + 16 * math.log(4 * math.pi)
    np.testing.assert_allclose(inner.numpy(), (elbo + prior).numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        (tape.gradient(inner_total, z) - tape.gradient(elbo_total, z)).numpy(),
        (z / 2).numpy(),
        rtol=1e-3,
        atol=1e-3,
    )


def test_latent_is_the_negative_gradient_at_the_origin(trained, mnist32):
    model, _, _, _ = trained
    x = tf.constant(mnist32[1][:5])
    z0 = tf.zeros((5, 32))
    with tf.GradientTape() as tape:
        tape.watch(z0)
        total = tf.reduce_sum(model.inner_losses(x, z0, training=False))
    expected = -model.step_size * tape.gradient(total, z0)
    assert model.step_size == 1 / 64  # the authors' latent scale at their batch of 64
    np.testing.assert_allclose(
        model.encode(mnist32[1][:5]).numpy(), expected.numpy(), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("likelihood", ["gaussian", "bce"])
def test_training_gradient_matches_finite_differences(float64, mnist10k, likelihood):
    # The whole objective, through sampling, the KL, the origin prior (non-zero
    # with origin_stddev and a second step) and the gradient at the origin; the
    # Gaussian likelihood, and the authors' BCE evaluated on the decoder's logits
    # (`losses.binary_crossentropy_from_logits`, its derivative in closed form). tanh, not ELU:
    # the loss holds ELU', whose kink at 0 a central difference can straddle (with
    # ELU, measured relative errors up to 1.6e-2 at a step of 1e-6, 9e-9 at 1e-7).
    # Measured here: 4e-9 to 1.6e-8.
    model = _tiny(
        num_steps=2,
        step_size=0.5,
        origin_stddev=0.3,
        likelihood=likelihood,
        likelihood_stddev=0.2,
        activation="tanh",
    )
    assert model.likelihood_takes_logits == (likelihood == "bce")
    x = _tiny_batch(mnist10k, dtype="float64")
    # the seed generators' states are non-trainable variables: finite_difference_error
    # restores them before every pass, so every pass draws the same noise
    generators = [model.seed_generator, model.reparameterization.seed_generator]
    states = {id(v) for v in model.non_trainable_variables}
    assert all(id(g.state) in states for g in generators)
    error = finite_difference_error(model, x)
    assert error < 1e-6, f"relative error {error:.2e}"


def test_xla_and_eager_agree(mnist10k):
    x = tf.image.resize(_tiny_batch(mnist10k, count=32), (8, 8)).numpy()  # 8x8: quick to compile

    def build():
        keras.utils.set_random_seed(1)  # the same weights
        return keras_gon.VariationalGON(image_shape=(8, 8, 1), latent_dim=4, width=2, seed=0)

    xla, eager = xla_and_eager_figures(build, x)
    # the origin gradient is deterministic at inference; the outer ELBO draws one z' ~ q,
    # and XLA's random numbers are not TensorFlow's kernels': close, not equal
    assert xla["inner_loss"] == pytest.approx(eager["inner_loss"], rel=1e-4)
    assert xla["kl_loss"] == pytest.approx(eager["kl_loss"], rel=1e-4)
    assert xla["bits_per_dim"] == pytest.approx(eager["bits_per_dim"], rel=0.05)
    assert np.isfinite(xla["train_loss"]) and np.isfinite(eager["train_loss"])


def test_sample_shapes_range_and_seeding(trained):
    model, _, _, _ = trained
    images = model.sample(16, seed=1).numpy()
    assert images.shape == (16, 32, 32, 1) and images.dtype == np.float32
    assert images.std(axis=0).mean() > 1e-3  # 16 different images, not one
    np.testing.assert_array_equal(model.sample(16, seed=1).numpy(), images)
    assert not np.allclose(model.sample(16, seed=2).numpy(), images)
    assert not np.allclose(model.sample(4).numpy(), model.sample(4).numpy())
    # z ~ N(0, I) goes through the convolutional decoder, after the posterior layers
    z = keras.random.normal((16, 32), seed=1)
    outputs = model.decoder(z, training=False).numpy()
    assert outputs.shape == (16, 32, 32, 2)  # the location, then the log-scale
    np.testing.assert_allclose(np.clip(outputs[..., :1], 0, 1), images, rtol=1e-5, atol=1e-6)


def test_inference_is_deterministic_and_changes_no_variable(trained, mnist32):
    model, _, _, _ = trained
    x = mnist32[1][:8]
    before = [v.numpy().copy() for v in model.variables]
    z = model.encode(x).numpy()
    np.testing.assert_array_equal(model.encode(x).numpy(), z)
    reconstruction = model.reconstruct(x).numpy()
    np.testing.assert_allclose(model.decode(z).numpy(), reconstruction, rtol=1e-5, atol=1e-6)
    for a, b in zip(before, model.variables):
        np.testing.assert_array_equal(a, b.numpy(), err_msg=b.path)


def test_save_and_load_give_identical_outputs(trained, mnist32, tmp_path):
    model, _, _, _ = trained
    model.set_kl_weight(0.5)
    path = tmp_path / "vgon.keras"
    try:
        model.save(path)
    finally:
        model.set_kl_weight(1.0)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_gon.VariationalGON)
    assert loaded.get_config() == model.get_config()
    assert float(loaded.kl_weight_variable) == 0.5  # β is state, saved with the weights
    loaded.set_kl_weight(1.0)  # the latent depends on β (the inner loss weighs the KL)
    assert_same_outputs(model, loaded, mnist32[1][:7], sample=True)
    assert_same_training_state(model, loaded, "trainable_weights")


def test_kl_warmup_raises_beta_linearly_and_resumes(mnist32):
    model = _tiny(kl_weight=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append(float(model.kl_weight_variable))
    )
    x = tf.image.resize(mnist32[0][:96], (16, 16)).numpy().clip(0, 1)
    model.fit(x, batch_size=16, epochs=1, verbose=0, callbacks=[KLWarmup(4), record])
    assert seen == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5, 0.5])
    seen.clear()
    model.fit(x[:32], batch_size=16, epochs=1, verbose=0, callbacks=[KLWarmup(4), record])
    assert seen == pytest.approx([0.5, 0.5])  # counted by the optimizer: no restart
    with pytest.raises(InputError, match="variational model"):
        gon = keras_gon.GON(image_shape=(16, 16, 1), latent_dim=8, width=4)
        gon.compile(optimizer="adam", jit_compile=False)
        gon.fit(x[:16], batch_size=16, verbose=0, callbacks=[KLWarmup(2)])
    with pytest.raises(InputError, match="warmup_steps"):
        KLWarmup(0)


def test_negative_elbo_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 4, 4, 1)).astype("float32")
    x_hat = rng.uniform(0.05, 0.95, size=(3, 4, 4, 1)).astype("float32")
    mean = rng.normal(size=(3, 5)).astype("float32")
    log_variance = rng.normal(size=(3, 5)).astype("float32")
    kl = 0.5 * (np.exp(log_variance) + mean**2 - 1 - log_variance).sum(1)
    bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).reshape(3, -1).sum(1)
    binary = (x > 0.5).astype("float32")
    bernoulli = -(binary * np.log(x_hat) + (1 - binary) * np.log(1 - x_hat)).reshape(3, -1).sum(1)
    gauss = 0.5 * ((x - x_hat) / 0.2) ** 2 + np.log(0.2) + 0.5 * np.log(2 * np.pi)
    gauss = gauss.reshape(3, -1).sum(1)
    for likelihood, nll, last in (
        ("bernoulli", bernoulli, "bits_per_dim"),
        ("bce", bce, "negative_elbo_nats"),
        ("gaussian", gauss, "negative_elbo_nats"),
    ):
        terms = gon_losses.negative_elbo(
            x,
            x_hat,
            mean,
            log_variance,
            likelihood=likelihood,
            likelihood_stddev=0.2,
            kl_weight=0.3,
        )
        assert sorted(terms) == sorted(["loss", *gon_losses.elbo_metric_names(likelihood)])
        np.testing.assert_allclose(terms["reconstruction_loss"], nll, rtol=1e-5)
        np.testing.assert_allclose(terms["kl_loss"], kl, rtol=1e-5)
        np.testing.assert_allclose(terms["loss"], nll + 0.3 * kl, rtol=1e-5)
        expected = (nll + kl) / (16 * np.log(2)) if last == "bits_per_dim" else nll + kl
        np.testing.assert_allclose(terms[last], expected, rtol=1e-5)


def test_parameters_are_the_gons_plus_the_two_dense_maps():
    model = keras_gon.VariationalGON(
        image_shape=(32, 32, 1), latent_dim=32, width=16, likelihood="bce"
    )
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert trainable == 74321 + 2 * (32 * 32 + 32) == 76433
    # the discretised logistic's log-scale: one more output channel of the last 4x4 conv
    default = keras_gon.VariationalGON(image_shape=(32, 32, 1), latent_dim=32, width=16)
    assert sum(int(np.prod(v.shape)) for v in default.trainable_variables) == 76433 + 16 * 16 + 1


def test_config_round_trip():
    model = keras_gon.VariationalGON(
        image_shape=(16, 16, 3),
        latent_dim=8,
        width=4,
        normalization="group",
        num_steps=2,
        step_size=0.5,
        origin_stddev=0.1,
        likelihood="gaussian",
        likelihood_stddev=0.05,
        kl_weight=0.5,
        seed=3,
    )
    config = model.get_config()
    assert "inner_loss" not in config and "outer_loss" not in config
    clone = keras_gon.VariationalGON.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert revived.get_config() == config
    assert config["likelihood"] == "gaussian" and config["kl_weight"] == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"likelihood": "poisson"}, "unknown likelihood"),
        ({"likelihood_stddev": 0.0}, "likelihood_stddev"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"kl_weight": "a lot"}, "kl_weight"),
        ({"inner_loss": "sse"}, "negative ELBO"),
        ({"image_shape": (30, 30, 1)}, "power of two"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        keras_gon.VariationalGON(**kwargs)


def test_bad_sample_and_kl_weight_arguments(trained):
    model, _, _, _ = trained
    for n in (0, 2.5, True):
        with pytest.raises(InputError, match="number of samples"):
            model.sample(n)
    with pytest.raises(InputError, match="seed"):
        model.sample(3, seed="a")
    with pytest.raises(InputError, match="kl_weight"):
        model.set_kl_weight(float("nan"))
    with pytest.raises(InputError, match=r"latents have shape \(2, 5\)"):
        model.decode(np.zeros((2, 5)))


def test_variational_gon_on_64x64_faces_samples_64x64x3(celeba_folder):
    """CelebA at 64x64 (320 faces), latent 32, width 8, batch 32, 40 steps of Adam 1e-3:
    held-out bits/dim 9.99 -> 8.41 measured."""
    from helpers import train_on_folder

    keras.utils.set_random_seed(0)
    model = keras_gon.VariationalGON(image_shape=(64, 64, 3), latent_dim=32, width=8, seed=0)
    before, after, _ = train_on_folder(model, celeba_folder, 40, batch_size=32, image_size=64)
    assert after["bits_per_dim"] < 9.0 < before["bits_per_dim"]
    samples = np.asarray(model.sample(5, seed=0))
    assert samples.shape == (5, 64, 64, 3)
    assert samples.std(axis=0).mean() > 0.01  # 5 different faces, not one

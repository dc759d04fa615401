"""The origin-gradient core: exact second-order gradients, per-example latents, no state change."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError
from keras_gon.models import latent_model

from helpers import (
    assert_same_origin_step,
    digits16,
    finite_difference_error,
    origin_step,
    outer_loss_and_gradient,
    randomize_normalizations,
)

EXACT_NORMALIZATIONS = ["batch", "batch_outer", "batch_frozen_origin", "group", "layer", "none"]


def _tiny_model(normalization, **kwargs):
    """A tiny GON at a generic point of weight space (`randomize_normalizations`)."""
    keras.utils.set_random_seed(1)
    model = keras_gon.GON(
        image_shape=(16, 16, 1), latent_dim=8, width=4, normalization=normalization, **kwargs
    )
    randomize_normalizations(model)
    return model


@pytest.mark.parametrize("normalization", EXACT_NORMALIZATIONS)
def test_outer_loss_gradient_matches_finite_differences(float64, mnist10k, normalization):
    model = _tiny_model(normalization)
    assert model.decoder.convs[0].kernel.dtype == "float64"
    error = finite_difference_error(model, digits16(mnist10k))
    assert error < 1e-5, f"{normalization}: relative error {error:.2e}"


def test_multi_step_gradient_matches_finite_differences(float64, mnist10k):
    model = _tiny_model("batch_frozen_origin", num_steps=3, step_size=0.1)
    error = finite_difference_error(model, digits16(mnist10k))
    assert error < 1e-5, f"relative error {error:.2e}"


def test_stock_keras_batch_norm_gradient_is_measurably_wrong(float64, mnist10k):
    # Pitfall 1: keras.layers.BatchNormalization stops the gradient through
    # the mean in its variance; the second-order gradient is off by ~5 % here
    # (measured 4.5e-2; keras_gon's BatchNormalization: 6e-10 at the same point).
    model = _tiny_model("keras_batch")
    error = finite_difference_error(model, digits16(mnist10k))
    assert error > 1e-3, f"relative error {error:.2e}"


def test_detach_removes_second_order_path(mnist10k):
    keras.utils.set_random_seed(0)
    x = digits16(mnist10k, count=4, dtype="float32")
    attached = keras_gon.GON(image_shape=(16, 16, 1), latent_dim=4, width=2)
    detached = keras_gon.GON.from_config({**attached.get_config(), "detach": True})
    detached.set_weights(attached.get_weights())
    # Gradient of the loss w.r.t. the first conv only flows through z when attached:
    # the first conv's gradient differs between the two.
    _, g_attached = outer_loss_and_gradient(attached, x)
    _, g_detached = outer_loss_and_gradient(detached, x)
    assert not np.allclose(g_attached[0].numpy(), g_detached[0].numpy())
    loss_a, _ = outer_loss_and_gradient(attached, x)
    loss_d, _ = outer_loss_and_gradient(detached, x)
    np.testing.assert_allclose(float(loss_a), float(loss_d), rtol=1e-5)


@pytest.fixture(scope="module")
def trained_gon(mnist32, make_batches):
    """The default GON after 60 steps on mnist10k (latent 32, width 16, batch 64)."""
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(image_shape=(32, 32, 1), latent_dim=32, width=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8))
    model.fit(make_batches(mnist32[0][:3840], 64, shuffle=True), epochs=1, verbose=0)
    return model


def test_latent_does_not_depend_on_the_batch(trained_gon, mnist32):
    x_test = mnist32[1]
    alone = np.concatenate([trained_gon.encode(x_test[i : i + 1]).numpy() for i in range(8)])
    in_batch = trained_gon.encode(x_test[:64]).numpy()[:8]
    assert np.abs(in_batch).max() > 1e-2  # a real latent, not zeros
    relative = np.abs(alone - in_batch).max() / np.abs(in_batch).max()
    assert relative < 1e-5


def test_training_and_inference_latents_agree_for_default(trained_gon, mnist32):
    # batch_frozen_origin: the inner pass uses moving statistics in training
    # too, so the latent a served encoder computes is the one F was trained on.
    x = tf.constant(mnist32[1][:16])
    z_train, _ = trained_gon.origin_latents(x, training=True)
    z_infer = trained_gon.encode(mnist32[1][:16])
    np.testing.assert_allclose(z_train.numpy(), z_infer.numpy(), rtol=1e-4, atol=1e-4)


def test_encode_at_inference_changes_no_variable(trained_gon, mnist32):
    before = [v.numpy().copy() for v in trained_gon.variables]
    trained_gon.encode(mnist32[1][:32])
    trained_gon.reconstruct(mnist32[1][:32])
    trained_gon.evaluate(mnist32[1][:64], verbose=0)
    after = [v.numpy() for v in trained_gon.variables]
    for b, a, v in zip(before, after, trained_gon.variables):
        np.testing.assert_array_equal(b, a, err_msg=v.path)


def test_mean_inner_reduction_scales_latent_with_batch(mnist32):
    # The authors' formulation (inner loss averaged over the batch): z ∝ 1/B.
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=8, width=4, inner_batch_reduction="mean")
    x = mnist32[1][:64]
    ratio = np.abs(model.encode(x[:1]).numpy()).max() / np.abs(model.encode(x).numpy()[:1]).max()
    np.testing.assert_allclose(ratio, 64, rtol=1e-3)


def test_random_origin_only_in_training(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=8, width=4, origin_stddev=0.5, seed=3)
    z0 = model.origin(4, training=True).numpy()
    assert 0.2 < z0.std() < 0.8
    np.testing.assert_array_equal(model.origin(4, training=False).numpy(), 0.0)
    x = mnist32[1][:4]
    np.testing.assert_array_equal(model.encode(x).numpy(), model.encode(x).numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"step_size": 0.0}, "step_size"),
        ({"origin_stddev": -1.0}, "origin_stddev"),
        ({"inner_batch_reduction": "max"}, "inner_batch_reduction"),
        ({"inner_loss": "huber"}, "unknown loss"),
        ({"latent_dim": 0}, "latent_dim"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        keras_gon.GON(**kwargs)


# --- the shared origin: F runs once at z0 = 0 for the whole batch ------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"normalization": "group"},
        {"normalization": "none"},
        {"normalization": "batch_frozen_origin"},
        {"normalization": "batch"},  # batch statistics at the origin: two Jacobians
        {"normalization": "batch", "inner_batch_reduction": "mean", "activation": "selu"},
        {"normalization": "batch_outer"},
        {"normalization": "batch", "num_steps": 2, "step_size": 0.1},
        {"activation": "selu"},
        {"activation": "gelu"},
        {"activation": "swish"},
        {"num_steps": 3, "step_size": 0.1},
        {"inner_batch_reduction": "mean"},
        {"inner_loss": "bce"},
    ],
    ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()) or "default",
)
def test_shared_origin_gives_the_latents_and_gradients_of_the_batched_origin(
    float64, mnist10k, options
):
    model = _tiny_model(options.pop("normalization", "layer"), **options)
    x = digits16(mnist10k, count=8)
    shared = origin_step(model, x, True, share_origin=True)
    batched = origin_step(model, x, True, share_origin=False)
    assert_same_origin_step(shared, batched)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"normalization": "group"},
        {"normalization": "none"},
        {"normalization": "batch_frozen_origin"},
        {"activation": "selu"},
        {"activation": "gelu"},
        {"num_steps": 3, "step_size": 0.1},
        {"inner_batch_reduction": "mean"},
        {"inner_loss": "bce"},
        {"inner_loss": "mse", "add_origin": False},
    ],
    ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()) or "default",
)
def test_reverse_shared_origin_gives_the_latents_and_gradients_of_the_batched_origin(
    float64, mnist10k, options
):
    model = _tiny_model(options.pop("normalization", "layer"), share_origin="reverse", **options)
    assert model.origin_method(True, batch_size=8) == "reverse"
    x = digits16(mnist10k, count=8)
    reverse = origin_step(model, x, True, share_origin="reverse")
    batched = origin_step(model, x, True, share_origin=False)
    assert_same_origin_step(reverse, batched, statistics=False)


def test_reverse_shared_origin_gradient_matches_finite_differences(float64, mnist10k):
    model = _tiny_model("layer", share_origin="reverse")
    assert model.origin_method(True, batch_size=8) == "reverse"
    error = finite_difference_error(model, digits16(mnist10k))
    assert error < 1e-5, f"relative error {error:.2e}"


def test_shared_origin_decodes_a_single_origin_unless_the_origin_differs_per_example(mnist32):
    passes = []

    class Recording(keras_gon.GON):
        def decode_latents(self, latents, training=False, inner_pass=False):
            passes.append(("decode", latents.shape[0], inner_pass, training))
            return super().decode_latents(latents, training=training, inner_pass=inner_pass)

        def linearize_decoder_at_origin(self, latent, batch_size, training=False):
            passes.append(("linearize", latent.shape[0], True, training))
            return super().linearize_decoder_at_origin(latent, batch_size, training=training)

    x = tf.constant(mnist32[1][:16])
    layer = Recording(latent_dim=8, width=4)
    batch = Recording(latent_dim=8, width=4, normalization="batch")
    random_origin = Recording(latent_dim=8, width=4, origin_stddev=0.1)
    stock = Recording(latent_dim=8, width=4, normalization="keras_batch")
    for model, training, expected in [
        (layer, True, ("linearize", 1)),
        (layer, False, ("linearize", 1)),
        (batch, True, ("linearize", 1)),  # batch statistics of identical examples: linearised
        (batch, False, ("linearize", 1)),  # moving statistics do not
        (random_origin, True, ("decode", 16)),  # z0 differs per example
        (random_origin, False, ("linearize", 1)),
        (stock, False, ("decode", 16)),  # the stock Keras layer has no linearisation
    ]:
        for run in (lambda f: f, tf.function):  # eager and traced alike
            passes.clear()
            run(lambda x: model.origin_latents(x, training=training)[0])(x)  # noqa: B023 (called here)
            assert passes == [(*expected, True, training)], (
                model.decoder.normalization,
                training,
                passes,
            )


def test_shared_origin_encodes_the_latents_of_the_batched_origin_at_inference(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=32, width=16, normalization="batch")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(mnist32[0][:256], batch_size=64, epochs=1, verbose=0)  # moving statistics != init
    x = mnist32[1][:64]
    shared = model.encode(x).numpy()
    model.share_origin = False
    model.reset_inference_functions()
    batched = model.encode(x).numpy()
    np.testing.assert_allclose(shared, batched, rtol=1e-5, atol=1e-5 * np.abs(batched).max())


def test_shared_origin_compiles_with_xla_and_defaults_to_no_xla(mnist32):
    """The linearised origin is plain ops: XLA compiles it, with the latents of the eager step."""
    model = keras_gon.GON(latent_dim=8, width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert model.shares_origin_in_training() and model.jit_compile is False
    x = tf.constant(mnist32[0][:8])
    eager = model.origin_latents(x, training=True)[0]
    compiled = tf.function(lambda x: model.origin_latents(x, training=True)[0], jit_compile=True)(x)
    np.testing.assert_allclose(
        compiled, eager, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(eager)))
    )


def _default_jit(monkeypatch, accelerator: bool, **options) -> bool:
    """`compile()`'s XLA choice for a GON with `options`, as if on an accelerator or not."""
    monkeypatch.setattr(latent_model, "has_accelerator", lambda: accelerator)
    model = keras_gon.GON(latent_dim=8, width=4, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model.jit_compile


def test_xla_on_the_cpu_only_for_the_forward_origin_under_batch_statistics_on_small_images(
    monkeypatch,
):
    """The CPU rule of `default_jit_compile` (benchmarks/RESULTS.md, "XLA on the CPU")."""
    batch = dict(normalization="batch")
    assert _default_jit(monkeypatch, False, **batch) is True  # 32x32: XLA fuses the tangents
    assert _default_jit(monkeypatch, False, image_shape=(64, 64, 3), **batch) is False
    assert _default_jit(monkeypatch, False) is False  # independent examples
    assert _default_jit(monkeypatch, False, share_origin=False) is False  # the batched origin
    assert _default_jit(monkeypatch, False, origin_stddev=0.1, **batch) is False
    # On an accelerator, XLA except for the forward mode of independent examples.
    assert _default_jit(monkeypatch, True) is False
    assert _default_jit(monkeypatch, True, share_origin=False) is True
    assert _default_jit(monkeypatch, True, image_shape=(64, 64, 3), **batch) is True


def test_shared_origin_is_a_saved_constructor_argument():
    model = keras_gon.GON(latent_dim=8, width=4, share_origin=False)
    assert model.get_config()["share_origin"] is False
    clone = keras_gon.GON.from_config(model.get_config())
    assert clone.share_origin is False and not clone.shares_origin_in_training()
    assert keras_gon.GON(latent_dim=8, width=4).shares_origin_in_training()


def test_auto_shares_the_origin_only_where_its_tangents_are_cheaper(mnist32):
    """share_origin="auto": shared while latent_dim tangents (2 x under batch statistics)
    are at most 1.75 per example of the batch; the frozen (serving) origin always."""
    from keras_gon.models.gradient_origin import SHARED_ORIGIN_TANGENTS_PER_EXAMPLE

    assert SHARED_ORIGIN_TANGENTS_PER_EXAMPLE == 1.75
    small, large = (keras_gon.GON(latent_dim=z, width=2) for z in (32, 256))
    assert small.share_origin == "auto" and small.get_config()["share_origin"] == "auto"
    assert small._can_share_origin(True, batch_size=64)
    assert not large._can_share_origin(True, batch_size=64)  # 256 tangents > 112
    assert large._can_share_origin(True, batch_size=256)
    assert not large.shares_origin_in_training()  # unknown batch: the reference 64
    batch_norm = keras_gon.GON(latent_dim=64, width=2, normalization="batch")
    assert batch_norm.origin_tangents(True) == 128 and batch_norm.origin_tangents(False) == 64
    assert not batch_norm._can_share_origin(True, batch_size=64)
    assert keras_gon.GON(latent_dim=256, width=2, share_origin=True).shares_origin_in_training()
    # Both paths give the same latents: the choice only changes the cost.
    x = tf.constant(mnist32[1][:8])
    chosen = large.origin_latents(x, training=True)[0]
    forced = origin_step(large, x, True, share_origin=True)
    np.testing.assert_allclose(
        chosen, forced[0], rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(chosen)))
    )
    assert large.freeze_origin()  # one matrix product per request, whatever the latent size
    np.testing.assert_allclose(
        large.encode(mnist32[1][:3]),
        large.encode_latents(tf.constant(mnist32[1][:3])),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("value", ["auto", True, False, "reverse", np.bool_(True)])
def test_share_origin_takes_its_choices_and_round_trips_them(value):
    model = keras_gon.GON(latent_dim=8, width=2, share_origin=value)
    assert model.share_origin == value and type(model.share_origin) in (str, bool)
    config = model.get_config()
    assert config["share_origin"] == value
    assert keras_gon.GON.from_config(config).share_origin == model.share_origin


@pytest.mark.parametrize("value", [None, 1, 0, "true", "forward", "batched", "Auto"])
def test_share_origin_refuses_anything_else(value):
    with pytest.raises(InputError, match="share_origin"):
        keras_gon.GON(latent_dim=8, width=2, share_origin=value)


def test_auto_takes_the_reverse_mode_beyond_one_tangent_per_example(mnist32):
    """share_origin="auto" with examples independent at the origin: the forward mode while
    its latent_dim tangents are at most FORWARD_ORIGIN_TANGENTS_PER_EXAMPLE per example,
    the reverse mode beyond, never the batched origin; batch statistics have no reverse mode."""
    from keras_gon.models.gradient_origin import FORWARD_ORIGIN_TANGENTS_PER_EXAMPLE as per_example

    small, large = (keras_gon.GON(latent_dim=z, width=2) for z in (32, 256))
    assert small.origin_method(True, batch_size=64) == "forward"
    assert large.origin_method(True, batch_size=64) == "reverse"
    assert large.origin_method(True) == "reverse"  # unknown batch: the reference 64
    assert large.origin_method(True, batch_size=int(256 / per_example)) == "forward"
    assert large.origin_method(False) == "reverse"  # inference: the reference batch
    batch_norm = keras_gon.GON(latent_dim=256, width=2, normalization="batch")
    assert batch_norm.origin_method(True, batch_size=64) == "batched"
    assert batch_norm.origin_method(False) == "reverse"  # moving statistics at inference
    frozen = keras_gon.GON(latent_dim=256, width=2, normalization="batch_frozen_origin")
    assert frozen.origin_method(True, batch_size=64) == "reverse"
    random_origin = keras_gon.GON(latent_dim=256, width=2, origin_stddev=0.1)
    assert random_origin.origin_method(True, batch_size=64) == "batched"
    assert (
        keras_gon.GON(latent_dim=256, width=2, share_origin=False).origin_method(True) == "batched"
    )
    assert (
        keras_gon.GON(latent_dim=8, width=2, share_origin="reverse").origin_method(
            True, batch_size=64
        )
        == "reverse"
    )
    reverse_batch_norm = keras_gon.GON(
        latent_dim=8, width=2, normalization="batch", share_origin="reverse"
    )
    assert reverse_batch_norm.origin_method(True, batch_size=64) == "batched"
    # the option is saved and checked
    clone = keras_gon.GON.from_config(
        keras_gon.GON(latent_dim=8, width=2, share_origin="reverse").get_config()
    )
    assert clone.share_origin == "reverse"
    with pytest.raises(InputError, match="share_origin"):
        keras_gon.GON(latent_dim=8, width=2, share_origin="sideways")
    # every mode encodes the same latents
    x = tf.constant(mnist32[1][:8])
    chosen = large.origin_latents(x, training=True)[0]
    for mode in (True, False):
        forced = origin_step(large, x, True, share_origin=mode)
        np.testing.assert_allclose(
            chosen, forced[0], rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(chosen)))
        )
    np.testing.assert_allclose(
        large.encode(mnist32[1][:3]),
        chosen[:3],
        rtol=1e-4,
        atol=1e-4 * float(tf.reduce_max(tf.abs(chosen))),
    )


def test_shared_origin_turns_itself_off_when_a_subclass_changes_the_inner_pass(mnist32):
    # A subclass that changes F (here: a scaled latent) below the class that
    # linearises the decoder: the linearisation no longer describes the inner
    # pass, so the latents must come from the batched origin, not GON.linearize.
    class Scaled(keras_gon.GON):
        def decode_latents(self, latents, training=False, inner_pass=False):
            return super().decode_latents(3.0 * latents, training=training, inner_pass=inner_pass)

    keras.utils.set_random_seed(0)
    model = Scaled(latent_dim=8, width=4)
    assert not model.shares_origin_in_training()
    x = tf.constant(mnist32[1][:6])
    z0 = tf.zeros((6, 8))
    with tf.GradientTape() as tape:
        tape.watch(z0)
        total = tf.reduce_sum(model.inner_losses(x, z0))
    expected = -tape.gradient(total, z0).numpy()
    np.testing.assert_allclose(
        model.encode(mnist32[1][:6]).numpy(),
        expected,
        rtol=1e-4,
        atol=1e-5 * np.abs(expected).max(),
    )

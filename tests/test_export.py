"""keras_gon.export: SavedModels for TF-Serving, reloaded in a fresh Python process."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon import cli
from keras_gon.export import SERVING_METHOD, export_saved_model, next_version_dir, serving_endpoints
from keras_gon.models import build_model
from keras_gon.registry import MODEL_KINDS as REGISTERED

from helpers import REPO_ROOT

COMMITTED = REPO_ROOT / "saved_models" / "gon-mnist"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

FRESH_PROCESS = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    inputs = np.load(sys.argv[2])
    results = {}
    for key in inputs.files:
        signature, argument, batch = key.split(":")
        out = loaded.signatures[signature](**{argument: tf.constant(inputs[key])})
        for name, value in out.items():
            results[f"{signature}:{name}:{batch}"] = value.numpy()
    np.savez(sys.argv[3], **results)
    """
)


def _run_in_a_fresh_process(script: str, saved, inputs: dict, folder) -> dict:
    """Saves `inputs` as folder/inputs.npz, runs `script` in a fresh Python with the
    arguments `saved` (what it loads), the inputs and folder/out.npz (where it saves its
    results) and returns those results."""
    np.savez(folder / "inputs.npz", **inputs)
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(saved),
            str(folder / "inputs.npz"),
            str(folder / "out.npz"),
        ],
        check=True,
        env=ENV,
    )
    with np.load(folder / "out.npz") as results:
        return {key: results[key] for key in results.files}


@pytest.fixture(scope="module")
def trained_gon(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=8, width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(mnist32[0][:640], batch_size=64, epochs=1, verbose=0)
    return model


def _expected_outputs(model, x, z):
    return {
        "reconstruct": {"reconstructions": model.reconstruct(x).numpy()},
        "encode": {"latents": model.encode(x).numpy()},
        "decode": {"images": model.decode(z).numpy()},
    }


def test_signatures_match_the_in_memory_model_in_a_fresh_process(trained_gon, mnist32, tmp_path):
    path = export_saved_model(trained_gon, tmp_path / "gon" / "1")
    rng = np.random.default_rng(0)
    inputs, expected = {}, {}
    for batch in (1, 7):
        x = mnist32[1][:batch]
        z = rng.standard_normal((batch, 8)).astype("float32")
        inputs[f"reconstruct:images:{batch}"] = x
        inputs[f"encode:images:{batch}"] = x
        inputs[f"decode:latents:{batch}"] = z
        for signature, outputs in _expected_outputs(trained_gon, x, z).items():
            for name, value in outputs.items():
                expected[f"{signature}:{name}:{batch}"] = value
    results = _run_in_a_fresh_process(FRESH_PROCESS, path, inputs, tmp_path)
    assert sorted(results) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(results[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_saved_model_cli_show_and_run(trained_gon, mnist32, tmp_path):
    path = export_saved_model(trained_gon, tmp_path / "export")
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", str(path), "--all"],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    ).stdout
    for name in ("serving_default", "reconstruct", "encode", "decode"):
        assert f"signature_def['{name}']" in shown
    assert shown.count(f"Method name is: {SERVING_METHOD}") >= 4
    assert "inputs['images']" in shown and "outputs['latents']" in shown
    assert "outputs['reconstructions']" in shown and "output_0" not in shown
    np.save(tmp_path / "x.npy", mnist32[1][:3])
    subprocess.run(
        [
            "saved_model_cli",
            "run",
            "--dir",
            str(path),
            "--tag_set",
            "serve",
            "--signature_def",
            "reconstruct",
            "--inputs",
            f"images={tmp_path / 'x.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    )
    result = np.load(tmp_path / "out" / "reconstructions.npy")
    np.testing.assert_allclose(
        result, trained_gon.reconstruct(mnist32[1][:3]).numpy(), rtol=1e-5, atol=1e-5
    )


def test_predict_request_round_trip(trained_gon, mnist32, tmp_path):
    from tensorflow_serving.apis import predict_pb2

    path = export_saved_model(trained_gon, tmp_path / "export")
    x = mnist32[1][:5]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "gon"
    request.model_spec.signature_name = "encode"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire

    signature = tf.saved_model.load(str(path)).signatures[request.model_spec.signature_name]
    tensors = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    outputs = signature(**tensors)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    response = predict_pb2.PredictResponse.FromString(response.SerializeToString())

    latents = tf.make_ndarray(response.outputs["latents"])
    np.testing.assert_allclose(latents, trained_gon.encode(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 32, 32, 3), "float32"), np.zeros((32, 32, 1), "float32")]
)
def test_wrong_rank_or_channels_is_refused_clearly(trained_gon, tmp_path, bad):
    loaded = tf.saved_model.load(str(export_saved_model(trained_gon, tmp_path / "export")))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"is not compatible with expected shape \[\?,\?,\?,1\]",
    ):
        loaded.signatures["encode"](images=tf.constant(bad))


def test_non_finite_requests_are_refused(trained_gon, tmp_path):
    loaded = tf.saved_model.load(str(export_saved_model(trained_gon, tmp_path / "export")))
    bad = np.zeros((2, 32, 32, 1), "float32")
    bad[1, 3, 4, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="images contain NaN or infinite"):
        loaded.signatures["encode"](images=tf.constant(bad))
    with pytest.raises(tf.errors.InvalidArgumentError, match="latents contain NaN or infinite"):
        loaded.signatures["decode"](latents=tf.constant(np.full((1, 8), np.inf, "float32")))


@pytest.mark.parametrize("shape", [(0, 32, 32, 1), (2, 0, 0, 1)])
def test_an_empty_batch_or_image_is_refused(trained_gon, tmp_path, shape):
    """(an exported variational GON failed on an empty batch inside its gradient ops)"""
    from keras_gon.data.preprocessing import graph_error_message

    loaded = tf.saved_model.load(str(export_saved_model(trained_gon, tmp_path / "export")))
    for signature in ("encode", "reconstruct"):
        with pytest.raises(tf.errors.InvalidArgumentError) as served:
            loaded.signatures[signature](images=tf.zeros(shape))
        reason = graph_error_message(served.value)
        assert reason == "images must hold at least one image of non-zero size", str(served.value)


def test_a_28x28_grey_level_request_reaches_the_32x32_model(trained_gon, mnist10k, tmp_path):
    digits = mnist10k["x_test"][:5, :, :, None]  # uint8 28x28, as a client sends them
    grey = tf.saved_model.load(
        str(export_saved_model(trained_gon, tmp_path / "uint8", image_dtype="uint8"))
    )
    served = grey.signatures["encode"](images=tf.constant(digits))["latents"]
    np.testing.assert_allclose(
        served.numpy(), trained_gon.encode(digits).numpy(), rtol=1e-5, atol=1e-5
    )
    loaded = tf.saved_model.load(str(export_saved_model(trained_gon, tmp_path / "export")))
    scaled = loaded.signatures["encode"](images=tf.constant(digits / 255.0, tf.float32))["latents"]
    np.testing.assert_allclose(served.numpy(), scaled.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "values, fragment",
    [
        ([-5.0, 0.5], "float values in [-5, 0.5]"),
        ([0.0, 300.0], "float values in [0, 300]"),
        ([0.0, 1.0 + 1e-3], "must be in [0, 1]"),  # a 0-255 image whose brightest pixel is 1.001
    ],
)
def test_requests_outside_the_pixel_range_are_refused_as_the_python_api_refuses_them(
    trained_gon, tmp_path, values, fragment
):
    from keras_gon.data.preprocessing import graph_error_message

    loaded = tf.saved_model.load(str(export_saved_model(trained_gon, tmp_path / "export")))
    images = np.zeros((2, 32, 32, 1), "float32")
    images[0, 0, 0, 0], images[1, 5, 5, 0] = values
    for signature in ("encode", "reconstruct"):
        with pytest.raises(tf.errors.InvalidArgumentError) as served:
            loaded.signatures[signature](images=tf.constant(images))
        reason = graph_error_message(served.value)
        assert reason is not None and fragment in reason, str(served.value)
        with pytest.raises(keras_gon.InputError) as api:
            trained_gon.encode(images)
        assert str(api.value) == reason  # the one check, the same line


def test_export_leaves_the_model_unchanged(trained_gon, tmp_path, mnist32):
    before = [w.numpy().copy() for w in trained_gon.weights]
    loaded = tf.saved_model.load(str(export_saved_model(trained_gon, tmp_path / "export")))
    loaded.signatures["encode"](images=tf.constant(mnist32[1][:4]))
    for b, w in zip(before, trained_gon.weights):
        np.testing.assert_array_equal(b, w.numpy())
    moving = {v.name: v.numpy().copy() for v in loaded.variables}
    loaded.signatures["reconstruct"](images=tf.constant(mnist32[1][:4]))
    for v in loaded.variables:
        np.testing.assert_array_equal(moving[v.name], v.numpy())


def test_cli_export_writes_numbered_versions(trained_gon, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    trained_gon.save(run / "model.keras")
    base = tmp_path / "saved_models" / "gon"
    assert cli.main(["export", str(run), "--to", str(base)]) == 0
    assert cli.main(["export", str(run), "--to", str(base)]) == 0
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    assert next_version_dir(base).name == "3"
    assert (base / "1" / "saved_model.pb").is_file()


def test_committed_model_loads_and_matches_current_signatures(trained_gon):
    versions = sorted(COMMITTED.iterdir(), key=lambda p: int(p.name))
    assert versions, f"no exported version in {COMMITTED}"
    loaded = tf.saved_model.load(str(versions[-1]))
    current = serving_endpoints(keras_gon.GON(image_shape=(32, 32, 1), latent_dim=32, width=16))
    assert set(loaded.signatures) == set(current) | {"serving_default"}
    for name, (function, specs) in current.items():
        signature = loaded.signatures[name]
        inputs = signature.structured_input_signature[1]
        assert sorted(inputs) == sorted(spec.name for spec in specs), name
        for spec in specs:
            assert inputs[spec.name].dtype == spec.dtype
            assert inputs[spec.name].shape.as_list() == spec.shape.as_list(), name
        # outputs: same names as the current code produces
        outputs = signature.structured_outputs
        expected = tf.function(function).get_concrete_function(*specs).structured_outputs
        assert sorted(outputs) == sorted(expected), name
    x = np.zeros((2, 32, 32, 1), "float32")
    assert loaded.signatures["reconstruct"](images=tf.constant(x))["reconstructions"].shape == (
        2,
        32,
        32,
        1,
    )
    readme = (REPO_ROOT / "saved_models" / "README.md").read_text()
    assert "tensorflow/serving" in readme and ":predict" in readme


# --- every model kind ------------------------------------------------------------

FRESH_PROCESS_CALLS = textwrap.dedent(
    """
    import sys, collections, numpy as np, tensorflow as tf
    inputs = np.load(sys.argv[2])
    calls = collections.defaultdict(dict)
    for key in inputs.files:
        kind, signature, case, argument = key.split("|")
        calls[(kind, signature, case)][argument] = inputs[key]
    loaded, results = {}, {}
    for (kind, signature, case), arguments in calls.items():
        if kind not in loaded:
            loaded[kind] = tf.saved_model.load(sys.argv[1] + "/" + kind)
        out = loaded[kind].signatures[signature](**{k: tf.constant(v) for k, v in arguments.items()})
        for name, value in out.items():
            results[f"{kind}|{signature}|{case}|{name}"] = value.numpy()
    np.savez(sys.argv[3], **results)
    """
)

# Every registered kind (keras_gon.registry), at export-test sizes.
EXPORT_OPTIONS = {
    "igon": dict(latent_dim=8, hidden_units=16, num_layers=2),
    "glo": dict(latent_dim=8, width=4, num_examples=16, inference_steps=5),
}
MODEL_KINDS = {
    kind: functools.partial(
        build_model, kind, **EXPORT_OPTIONS.get(kind, dict(latent_dim=8, width=4))
    )
    for kind in REGISTERED
}

EXPECTED_SIGNATURES = {
    "gon": {"reconstruct", "encode", "decode"},
    "vgon": {"reconstruct", "encode", "decode", "sample"},
    "vae": {"reconstruct", "encode", "decode", "sample"},
    "igon": {"reconstruct", "encode", "decode", "sample", "render"},
    "ae": {"reconstruct", "encode", "decode"},
    "tied_ae": {"reconstruct", "encode", "decode"},
    "glo": {"reconstruct", "encode", "decode"},
    "classifier": {"reconstruct", "encode", "decode", "classify"},
}


def test_every_registered_kind_is_exported_here():
    assert set(EXPECTED_SIGNATURES) == set(REGISTERED)


def _in_memory(model, signature, arguments):
    """What the Python API returns for the inputs of one signature call."""
    if signature == "reconstruct":
        return {"reconstructions": model.reconstruct(arguments["images"])}
    if signature == "encode":
        return {"latents": model.encode(arguments["images"])}
    if signature == "decode":
        return {"images": model.decode(arguments["latents"])}
    if signature == "classify":
        return {"probabilities": model.classify(arguments["images"])}
    if signature == "sample":
        return {"images": model.sample(int(arguments["count"]), seed=int(arguments["seed"]))}
    if signature == "render":
        return {"images": model.render(arguments["latents"], int(arguments["resolution"]))}
    raise AssertionError(signature)


@pytest.fixture(scope="module")
def exported_kinds(mnist32, mnist10k, tmp_path_factory):
    """Every model kind, a few training steps each, exported and reloaded in one fresh process."""
    root = tmp_path_factory.mktemp("kinds")
    rng = np.random.default_rng(0)
    models, inputs = {}, {}
    for kind, build in MODEL_KINDS.items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        size = model.image_shape[0]
        native = {
            k: mnist10k[k][:128, :, :, None].astype("float32") / 255.0
            for k in ("x_train", "x_test")
        }
        train = mnist32[0][:128] if size == 32 else native["x_train"]
        held_out = mnist32[1][:7] if size == 32 else native["x_test"][:7]
        if kind == "glo":
            model.fit(train[:16], np.arange(16), batch_size=8, epochs=1, verbose=0)
        elif kind == "classifier":
            model.fit(train, mnist10k["y_train"][:128], batch_size=32, epochs=1, verbose=0)
        else:
            model.fit(train, batch_size=32, epochs=1, verbose=0)
        if kind == "igon":
            model.fit_latent_statistics(train[:64])
        export_saved_model(model, root / kind)
        models[kind] = model
        for batch in (1, 7):
            case = f"batch{batch}"
            z = rng.standard_normal((batch, 8)).astype("float32")
            arguments = {
                "reconstruct": {"images": held_out[:batch]},
                "encode": {"images": held_out[:batch]},
                "decode": {"latents": z},
                "classify": {"images": held_out[:batch]},
                "sample": {"count": np.int32(batch), "seed": np.int32(3)},
                "render": {"latents": z, "resolution": np.int32(40)},
            }
            for signature in EXPECTED_SIGNATURES[kind]:
                for name, value in arguments[signature].items():
                    inputs[f"{kind}|{signature}|{case}|{name}"] = value
    outputs = _run_in_a_fresh_process(FRESH_PROCESS_CALLS, root, inputs, root)
    return models, inputs, outputs, root


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_model_kind_serves_what_the_python_api_returns(exported_kinds, kind):
    models, inputs, outputs, root = exported_kinds
    model = models[kind]
    loaded = tf.saved_model.load(str(root / kind))
    assert set(loaded.signatures) == EXPECTED_SIGNATURES[kind] | {"serving_default"}
    compared = 0
    for signature in EXPECTED_SIGNATURES[kind]:
        for case in ("batch1", "batch7"):
            prefix = f"{kind}|{signature}|{case}|"
            arguments = {k[len(prefix) :]: v for k, v in inputs.items() if k.startswith(prefix)}
            for name, value in _in_memory(model, signature, arguments).items():
                served = outputs[prefix + name]
                assert served.shape == tuple(value.shape), (prefix, name)
                np.testing.assert_allclose(
                    served, np.asarray(value), rtol=1e-5, atol=1e-5, err_msg=prefix + name
                )
                compared += 1
    assert compared == 2 * len(EXPECTED_SIGNATURES[kind])


def test_sample_signature_refuses_a_non_positive_count(exported_kinds):
    loaded = tf.saved_model.load(str(exported_kinds[3] / "vgon"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="count must be >= 1"):
        loaded.signatures["sample"](count=tf.constant(0), seed=tf.constant(1))


def _graph_ops(concrete_function) -> set:
    graph = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def test_the_exported_gon_encoder_is_a_matrix_product_of_the_frozen_origin(
    trained_gon, mnist32, tmp_path
):
    """The serving copy freezes F(0) and its Jacobian (weights never change in serving): the
    encode signature runs no layer of the decoder, and gives the in-memory latents."""
    export_saved_model(trained_gon, tmp_path / "1")
    encode = tf.saved_model.load(str(tmp_path / "1")).signatures["encode"]
    ops = _graph_ops(encode)
    assert "MatMul" in ops and not {"Conv2DBackpropInput", "Conv2D", "Elu", "Sigmoid"} & ops, ops
    x = mnist32[1][:64]
    np.testing.assert_allclose(
        encode(images=tf.constant(x))["latents"].numpy(),
        trained_gon.encode(x).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    batch_norm = keras_gon.GON(latent_dim=8, width=4, normalization="batch")
    assert batch_norm.freeze_origin()  # moving statistics at inference: independent examples
    batch_norm.unfreeze_origin()
    random_origin = keras_gon.GON(latent_dim=8, width=4, num_steps=2)
    assert random_origin.freeze_origin()  # its first step
    random_origin.unfreeze_origin()

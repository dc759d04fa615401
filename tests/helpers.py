"""Test helpers shared by the test modules: tiny models of every kind, real data for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_gon.registry import MODEL_KINDS

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
"""The real data sets, beside the repository (see ../shared/data/README.md)."""
MNIST10K = SHARED_DATA / "mnist10k.npz"
NPZ = str(MNIST10K)
"""mnist10k as the command line's `--data` argument."""
MNIST_DIR = SHARED_DATA / "mnist"
MNIST22K = SHARED_DATA / "mnist22k.npz"
KIND_NAMES = tuple(MODEL_KINDS)
TINY_BATCH = 16


def input_error(fn, *args, **kwargs) -> str:
    """Calls `fn(*args, **kwargs)`, expects a `keras_gon.InputError` with a one-line message
    and returns the message."""
    import pytest

    from keras_gon.errors import InputError

    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def file_error(read, path, data: bytes) -> str:
    """Writes `data` to `path`, expects `read(path)` to refuse it with a one-line
    `keras_gon.InputError` and returns the message."""
    path.write_bytes(data)
    return input_error(read, path)


def tiny_gon_preset(baseline=None, **training):
    """A "tiny_gon" preset recipe: a GON of latent_dim 4 and width 2 on mnist, trained with
    `training` (TrainingRecipe's options: epochs, batch_size, ...)."""
    from keras_gon.preset_builder import PresetRecipe
    from keras_gon.training import TrainingRecipe

    recipe = TrainingRecipe("gon", data=None, options={"latent_dim": 4, "width": 2}, **training)
    return PresetRecipe("tiny_gon", "a tiny GON", "mnist", recipe, baseline=baseline)


# --- the command line -------------------------------------------------------------------


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """Runs `keras-gon argv` in-process: `(exit status, stdout, stderr)`. An argparse
    refusal (SystemExit) gives its exit code as the status."""
    from keras_gon import cli

    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as refusal:
        status = refusal.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


TINY_ARGV = ("--width", "2", "--latent-dim", "4", "--verbose", "0")
"""`train`'s options of a tiny convolutional model, quiet."""


def train_argv(kind: str, data, out, *options) -> list:
    """`keras-gon train KIND --data DATA --out OUT OPTIONS...` as an argv (of strings and
    paths, for `run_cli`)."""
    return ["train", kind, "--data", data, "--out", out, *options]


def assert_one_error_line(status, err: str, fragment: str) -> str:
    """Exit status 2, exactly one `keras-gon: error:` line in `err`, holding `fragment`,
    and no traceback; returns the line."""
    lines = [line for line in err.strip().splitlines() if line.startswith("keras-gon: error:")]
    assert status == 2 and len(lines) == 1, (status, err[-3000:])
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err, err[-3000:]
    return lines[0]


def train_run(tmp_path_factory, kind: str, *argv) -> Path:
    """The folder of a finished `keras-gon train kind argv` run (a module's shared run)."""
    from keras_gon import cli

    out = tmp_path_factory.mktemp(kind)
    assert cli.main(["train", kind, *[str(a) for a in argv], "--out", str(out)]) == 0
    return out


def load_mnist10k() -> dict:
    """The real mnist10k split: uint8 x_train (8000) / x_test (2000) and labels."""
    with np.load(MNIST10K) as data:
        return {key: data[key] for key in data.files}


def tiny_options(name: str) -> dict:
    """Constructor options of a small, quick model of kind `name`."""
    if name == "igon":
        return dict(image_shape=(8, 8, 1), latent_dim=4, hidden_units=8, num_layers=2, seed=0)
    options = dict(image_shape=(16, 16, 1), latent_dim=4, width=2, seed=0)
    if name == "glo":
        options.update(num_examples=TINY_BATCH, inference_steps=3)
    if name == "classifier":
        options.update(reconstruction_weight=0.5)
    return options


def tiny_model(name: str, **overrides):
    """A seeded small model of kind `name` (see `tiny_options`)."""
    import keras

    keras.utils.set_random_seed(0)
    from keras_gon.models import build_model

    return build_model(name, **{**tiny_options(name), **overrides})


def tiny_data(name: str, mnist10k: dict, count: int = TINY_BATCH):
    """`(images, y)`: real held-out digits at the tiny model's size, and the kind's `y`
    (labels for the classifier, example indices for GLO, None otherwise)."""
    import tensorflow as tf

    size = tiny_options(name)["image_shape"][0]
    x = (
        tf.image.resize(
            mnist10k["x_test"][:count, :, :, None].astype("float32") / 255.0, (size, size)
        )
        .numpy()
        .clip(0.0, 1.0)
    )
    data = MODEL_KINDS[name].data
    if data == "labelled":
        return x, mnist10k["y_test"][:count].astype("int32")
    if data == "indexed":
        return x, np.arange(count, dtype="int32")
    return x, None


def one_step(name: str, mnist10k: dict, strategy) -> dict:
    """One SGD `fit` step of a tiny seeded model on one global batch under `strategy`.

    SGD, not Adam: Adam's first update is lr * sign(g) whatever the gradient's
    scale, so it would hide a gradient summed over replicas without 1/replicas.
    """
    import keras
    import tensorflow as tf

    x, y = tiny_data(name, mnist10k)
    with strategy.scope():
        model = tiny_model(name)
        model.compile(optimizer=keras.optimizers.SGD(1e-2), jit_compile=False)
    before = [np.array(w) for w in model.get_weights()]
    items = x if y is None else (x, y)
    dataset = tf.data.Dataset.from_tensor_slices(items).batch(len(x))
    history = model.fit(dataset, epochs=1, verbose=0).history
    return {
        "before": before,
        "after": [np.array(w) for w in model.get_weights()],
        "loss": float(history["loss"][0]),
        "replicas": strategy.num_replicas_in_sync,
    }


def write_mirrored_results(out) -> None:
    """Writes to the JSON file `out`, for each model kind, `one_step` on one device against
    `one_step` under MirroredStrategy on 2 logical CPUs. Run in a fresh process (the logical
    devices are set before TensorFlow initialises): see test_contract's mirrored_results."""
    import json

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    mnist10k = load_mnist10k()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for name in KIND_NAMES:
        single = one_step(name, mnist10k, tf.distribute.get_strategy())
        replicated = one_step(name, mnist10k, mirrored)
        results[name] = {
            "replicas": replicated["replicas"],
            "loss": single["loss"],
            "loss_difference": abs(single["loss"] - replicated["loss"]),
            "update": max(
                float(np.max(np.abs(a - b))) for a, b in zip(single["after"], single["before"])
            ),
            "max_weight_difference": max(
                float(np.max(np.abs(a - b))) for a, b in zip(single["after"], replicated["after"])
            ),
        }
        print(name, results[name], flush=True)
    Path(out).write_text(json.dumps(results))


def origin_step(model, x, training: bool, share_origin: bool | str):
    """Latents, inner losses, outer gradients and the non-trainable state after one traced
    step of a GradientOriginModel with `share_origin`; its state and option restored."""
    import tensorflow as tf

    previous, model.share_origin = model.share_origin, share_origin
    state = [v.numpy() for v in model.non_trainable_variables]

    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            latents, inner = model.origin_latents(x, training=training)
            loss = tf.reduce_mean(model.outer_losses(x, latents, training=training))
        return latents, inner, tape.gradient(loss, model.trainable_variables)

    latents, inner, gradients = run(x)
    after = [v.numpy() for v in model.non_trainable_variables]  # e.g. moving statistics
    model.share_origin = previous
    for variable, value in zip(model.non_trainable_variables, state):
        variable.assign(value)
    return latents.numpy(), inner.numpy(), [g.numpy() for g in gradients], after


def assert_same_origin_step(
    shared,
    batched,
    statistics: bool = True,
    smallest_latent: float = 1e-3,
    latent_atol: float = 1e-10,
) -> None:
    """Two `origin_step` results agree: the latents (not all zero: their largest magnitude
    above `smallest_latent`; to `latent_atol` of it), the loss, the gradients and, with
    `statistics`, the updated moving statistics."""
    import numpy as np

    assert np.abs(shared[0]).max() > smallest_latent
    np.testing.assert_allclose(
        shared[0], batched[0], rtol=1e-10, atol=latent_atol * np.abs(batched[0]).max()
    )
    np.testing.assert_allclose(shared[1], batched[1], rtol=1e-10)
    for a, b in zip(shared[2], batched[2]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10 * max(np.abs(b).max(), 1.0))
    for a, b in zip(shared[3], batched[3]) if statistics else ():  # moving statistics alike
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def assert_affine_encoder_survives_saving(model, images, path) -> None:
    """`model.encode` is affine in the image (a linear encoder's), and a `.keras` round trip
    at `path` keeps the config and the latents."""
    import keras

    a, b = images[:3], images[3:6]
    np.testing.assert_allclose(
        model.encode(0.3 * a + 0.7 * b).numpy(),
        0.3 * model.encode(a).numpy() + 0.7 * model.encode(b).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.encode(a).numpy(), model.encode(a).numpy())


def extract_members(tar_name: str, wanted, destination: Path) -> Path:
    """Extracts the members of `../shared/data/<tar_name>` whose names `wanted(name)` accepts
    into `destination` (one sequential read of the tar: only those files are written)."""
    import tarfile

    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(SHARED_DATA / tar_name, "r|") as archive:
        for member in archive:
            if member.isfile() and wanted(member.name):
                archive.extract(member, destination, filter="data")
    return destination


def cifar10_subset(
    destination: Path,
    classes=("airplane", "automobile", "bird"),
    train_per_class: int = 100,
    test_per_class: int = 30,
) -> Path:
    """A CIFAR-10 folder of `classes` with train/ and test/ subfolders (the real JPEGs)."""

    def wanted(name: str) -> bool:
        parts = name.split("/")
        if len(parts) != 3 or parts[1] not in classes:
            return False
        limit = train_per_class if parts[0] == "train" else test_per_class
        return int(parts[2].split(".")[0]) < limit

    return extract_members("cifar10-jpg.tar", wanted, destination)


def celeba_subset(destination: Path, count: int = 320) -> Path:
    """A flat folder of the first `count` CelebA faces (89x109 RGB JPEGs)."""
    extract_members(
        "celeba-8k.tar",
        lambda name: name.endswith(".jpg") and int(name[-10:-4]) <= count,
        destination,
    )
    return destination / "celeba"


def coil20_subset(destination: Path, objects=(1, 2, 3, 4)) -> Path:
    """A flat folder of COIL-20's 72 poses of `objects` (grey 128x128 PNGs) and its
    non-image file `Icon\\r`."""
    prefixes = tuple(f"coil-20-proc/obj{k}__" for k in objects)
    extract_members(
        "coil-20-proc.tar",
        lambda name: name.startswith(prefixes) or not is_image_name(name),
        destination,
    )
    return destination / "coil-20-proc"


def is_image_name(name: str) -> bool:
    return name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".gif"))


def train_on_folder(model, folder, steps: int, lr: float = 1e-3, **load_options):
    """Trains `model` for `steps` Adam steps on an image folder (`load_image_folder`);
    returns its held-out figures `(before, after)` training, and the test pipeline."""
    from keras_gon.data import load_image_folder

    train, test, _ = load_image_folder(folder, verbose=False, seed=0, **load_options)
    result = fit_adam(model, train.repeat(), test, lr=lr, before=True, steps_per_epoch=steps)
    return result["before"], result["held_out"], test


def fit_adam(
    model,
    train,
    test,
    *,
    lr: float = 1e-3,
    epsilon: float = 1e-7,
    jit_compile=None,
    before: bool = False,
    validate: bool = False,
    **fit_options,
) -> dict:
    """Compiles `model` with Adam(lr, epsilon), fits it on the `train` pipeline (one epoch
    unless `fit_options` say otherwise; validating on `test` with `validate`) and evaluates it
    on `test`: {"held_out": figures, "history": fit's, "before": figures untrained (`before`)}."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr, epsilon=epsilon), jit_compile=jit_compile)
    result = {}
    if before:
        result["before"] = model.evaluate(test, verbose=0, return_dict=True)
    fit_options.setdefault("epochs", 1)
    history = model.fit(train, validation_data=test if validate else None, verbose=0, **fit_options)
    result["history"] = history.history
    result["held_out"] = model.evaluate(test, verbose=0, return_dict=True)
    return result


def fit_mnist32(model_class, mnist32, make_batches, model_options=None, **fit_options):
    """A `model_class` (latent 32, width 16, seeded 0) fitted by `fit_adam` as the paper's
    MNIST runs: batches of 64 shuffled, held-out batches of 250, Adam 1e-4 with PyTorch's
    epsilon; `(model, fit_adam's result)`."""
    import keras

    keras.utils.set_random_seed(0)
    model = model_class(image_shape=(32, 32, 1), latent_dim=32, width=16, **(model_options or {}))
    result = fit_adam(
        model,
        make_batches(mnist32[0], 64, shuffle=True),
        make_batches(mnist32[1], 250, shuffle=False),
        lr=1e-4,
        epsilon=1e-8,
        **fit_options,
    )
    return model, result


def autoencoder_after_steps(model_class, mnist32, make_batches, steps: int, **options):
    """`(model, held-out figures)`: a seeded `model_class(latent_dim=8, width=4, seed=0,
    **options)` after `steps` Adam 1e-3 steps of 64 training digits (`fit_adam`)."""
    import keras

    keras.utils.set_random_seed(0)
    model = model_class(latent_dim=8, width=4, seed=0, **options)
    result = fit_adam(
        model,
        make_batches(mnist32[0][: steps * 64], 64, shuffle=True),
        make_batches(mnist32[1], 500, shuffle=False),
    )
    return model, result["held_out"]


def trained_autoencoder_fixture(model_class, steps: int):
    """A module-scoped fixture `trained`: `autoencoder_after_steps(model_class, ..., steps)`."""
    import pytest

    @pytest.fixture(scope="module")
    def trained(mnist32, make_batches):
        return autoencoder_after_steps(model_class, mnist32, make_batches, steps)

    return trained


def assert_spatial_latents_learn_and_survive_saving(trained_spatial, x, path):
    """`trained_spatial`, `(model, held-out loss before, after)`: the loss fell by a quarter
    at least, and a `.keras` round trip at `path` keeps the 4x4 latent map and the outputs
    on `x`; returns the loaded model."""
    model, before, after = trained_spatial
    assert after < 0.75 * before, (before, after)
    loaded = save_and_load(model, path)
    assert loaded.decoder.latent_map_size == 4
    assert_same_outputs(model, loaded, x)
    return loaded


def held_out_loss_before_and_after(model, mnist32, steps: int) -> tuple[float, float]:
    """`model`'s held-out loss on 500 digits (batches of 250) before and after `steps` Adam
    1e-3 steps of 64 training digits."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    held_out = mnist32[1][:500]
    before = model.evaluate(held_out, batch_size=250, verbose=0, return_dict=True)["loss"]
    model.fit(mnist32[0][: steps * 64], batch_size=64, epochs=1, verbose=0)
    after = model.evaluate(held_out, batch_size=250, verbose=0, return_dict=True)["loss"]
    return before, after


def xla_and_eager_figures(build, x) -> list[dict]:
    """`[with XLA, without]`: the held-out figures of `build()` on `x` (one batch), then
    "train_loss", the loss of one Adam 1e-4 step on it; `build` seeds its model."""
    import keras

    results = []
    for jit in (True, False):
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
        results.append(model.evaluate(x, batch_size=len(x), verbose=0, return_dict=True))
        results[-1]["train_loss"] = model.train_on_batch(x, return_dict=True)["loss"]
    return results


# --- saving ------------------------------------------------------------------------------


def save_and_load(model, path):
    """Saves `model` at `path` and loads it back: the same class and config."""
    import keras

    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    return loaded


def assert_same_outputs(model, loaded, x, sample: bool = False) -> None:
    """`loaded` gives `model`'s latents and reconstructions of `x` to the bit (and its
    seeded samples, with `sample`)."""
    np.testing.assert_array_equal(loaded.encode(x).numpy(), model.encode(x).numpy())
    np.testing.assert_array_equal(loaded.reconstruct(x).numpy(), model.reconstruct(x).numpy())
    if sample:
        np.testing.assert_array_equal(
            loaded.sample(5, seed=3).numpy(), model.sample(5, seed=3).numpy()
        )


def assert_same_training_state(model, loaded, variables: str = "weights") -> None:
    """`loaded` has `model`'s `variables` (an attribute: weights, trainable_weights) to the
    bit, and its optimizer's step count, after some training."""
    for a, b in zip(getattr(model, variables), getattr(loaded, variables)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0


def digits16(mnist10k: dict, count: int = 8, dtype: str = "float64"):
    """`count` real held-out digits at 16x16 (a tensor of `dtype`)."""
    import tensorflow as tf

    x = tf.image.resize(mnist10k["x_test"][:count, :, :, None] / 255.0, (16, 16))
    return tf.cast(x, dtype)


def randomize_normalizations(model, seed: int = 2) -> None:
    """Moves every normalisation scale and offset to a generic point (N(1, 0.2²), N(0, 0.2²)).

    At initialisation every offset is 0, and where the origin pass has zero variance
    (batch norm, instance-like group norm) every ELU there is evaluated exactly at 0,
    where its second derivative jumps: the loss is not twice differentiable at that
    point and central differences average the two sides.
    """
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        if variable.path.endswith(("gamma", "beta")):
            base = 1.0 if variable.path.endswith("gamma") else 0.0
            variable.assign(base + 0.2 * rng.standard_normal(variable.shape))


def outer_loss_and_gradient(model, x):
    """A GradientOriginModel's training loss and its gradient, computed as train_step does
    (traced once per model)."""
    import tensorflow as tf

    if not hasattr(model, "_test_loss_and_gradient"):

        def loss_and_gradient(x):
            with tf.GradientTape() as tape:
                latents, _ = model.origin_latents(x, training=True)
                losses = model.outer_losses(x, latents, training=True)
                if isinstance(losses, dict):  # the variational models' ELBO terms
                    losses = losses["loss"]
                loss = tf.reduce_mean(losses)
            return loss, tape.gradient(loss, model.trainable_variables)

        model._test_loss_and_gradient = tf.function(loss_and_gradient)
    return model._test_loss_and_gradient(x)


def finite_difference_error(
    model, x, directions: int = 3, step: float = 1e-6, seed: int = 0
) -> float:
    """Max relative error of the outer loss's directional derivatives (`outer_loss_and_gradient`)
    against central differences; the model's non-trainable state is restored after each pass."""
    rng = np.random.default_rng(seed)
    state = [v.numpy() for v in model.non_trainable_variables]

    def restore_state():
        for variable, value in zip(model.non_trainable_variables, state):
            variable.assign(value)

    _, gradient = outer_loss_and_gradient(model, x)
    restore_state()
    weights = [v.numpy() for v in model.trainable_variables]
    errors = []
    for _ in range(directions):
        direction = [rng.standard_normal(w.shape) for w in weights]
        analytic = sum(float(np.sum(g.numpy() * d)) for g, d in zip(gradient, direction))
        values = []
        for sign in (1.0, -1.0):
            for variable, w, d in zip(model.trainable_variables, weights, direction):
                variable.assign(w + sign * step * d)
            values.append(float(outer_loss_and_gradient(model, x)[0]))
            restore_state()
        for variable, w in zip(model.trainable_variables, weights):
            variable.assign(w)
        numeric = (values[0] - values[1]) / (2 * step)
        errors.append(abs(analytic - numeric) / max(abs(numeric), 1e-12))
    return max(errors)

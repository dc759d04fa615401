"""Resumable studies: one stored result per (model, setting, seed) run.

A study is a list of `RunSpec`s. `run_study` trains every spec whose result
is not yet in the study folder and writes each result, when its run
finishes, to `runs/<key>.json` (a temporary file renamed into place, so a
killed run leaves nothing half-written and is simply run again). Running the
same study again skips what is stored, so a long study runs in pieces, and
tables are always regenerated from the stored results.

Each run trains with `model.fit` for `epochs` epochs and, after every epoch,
evaluates the fixed model on a fixed set of training images and of held-out
images (`keras_gon.callbacks.EpochEvaluation`): the generalisation gap, not
Keras's running training mean. At the end it evaluates the whole held-out set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from keras_gon.errors import InputError
from keras_gon.files import write_json

SETTINGS = {
    "paper": {
        "normalization": "batch",
        "inner_batch_reduction": "mean",
        "gon_inner_loss": "mse",
        "vgon_step_size": 1.0,
        "statistics": "batch",
    },
    "ours": {
        "normalization": "layer",
        "inner_batch_reduction": "sum",
        "gon_inner_loss": "sse",
        "vgon_step_size": 1.0 / 64,
        "statistics": "moving",
    },
}
"""The two settings every claim is measured at.

- `"paper"`: the authors' code. BatchNorm (PyTorch's momentum and epsilon);
  the GON's inner loss is their `((g - x)**2).sum(1).mean()`, the squared
  error averaged over the batch and the pixels ("mse" with batch mean), the
  variational GON's the -ELBO averaged over the batch; every loss is evaluated
  with batch statistics, as their scripts, which never call `.eval()`, do.
- `"ours"`: the library's defaults. Per-example layer normalisation, inner
  losses summed over the batch (a batch-independent encoder; the variational
  GON's step size 1/64 gives its latents the authors' scale at batch 64),
  inference with the model as exported.

Each run's key includes its setting's values, so changing a setting reruns it.
"""

TEN_STEPS = {"num_steps": 10, "step_size": 0.1}
VARIANTS = {
    "gon": ("gon", {}),
    "gon_detach": ("gon", {"detach": True}),
    "gon_10step": ("gon", TEN_STEPS),
    "gon_10step_detach": ("gon", {**TEN_STEPS, "detach": True}),
    "ae": ("ae", {}),
    "tied_ae": ("tied_ae", {}),
    "glo": ("glo", {}),
    "vgon": ("vgon", {"likelihood": "discretized_logistic"}),
    "vae": ("vae", {"likelihood": "discretized_logistic"}),
    "vgon_bce": ("vgon", {"likelihood": "bce"}),
    "vae_bce": ("vae", {"likelihood": "bce"}),
    "vgon_gaussian": ("vgon", {"likelihood": "gaussian"}),
    "vae_gaussian": ("vae", {"likelihood": "gaussian"}),
}
"""The models a study trains, as data: a registered kind and the options that make the
variant (the multi-step GON's ten steps of 0.1, the detached GON, the likelihoods)."""

REPORTED_METRIC = {
    name: {
        "discretized_logistic": "bits_per_dim",
        "bce": "negative_elbo_nats",
        "gaussian": "negative_elbo_nats",
    }.get(options.get("likelihood"), "loss")
    for name, (_, options) in VARIANTS.items()
}
"""The held-out figure of each variant: SSE per image, bits/dim, or -ELBO in nats."""

KINDS = tuple(VARIANTS)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a study: what is trained, on what, for how long, with which seed.

    `options` holds extra constructor arguments as sorted `(name, value)`
    pairs (e.g. `(("step_size", 0.015625),)`); `label` names the row it
    belongs to in tables. The key (`RunSpec.key`) depends on every field but
    `label` and `group`, so renaming a row never reruns it.
    """

    kind: str
    setting: str
    latent_dim: int
    epochs: int
    seed: int
    width: int = 16
    activation: str = "elu"
    origin_stddev: float = 0.0
    add_origin: bool = True
    options: tuple = ()
    group: str = ""
    label: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InputError(f"unknown model kind {self.kind!r}: expected one of {KINDS}")
        if self.setting not in SETTINGS:
            raise InputError(f"unknown setting {self.setting!r}: expected one of {tuple(SETTINGS)}")

    def identity(self) -> dict:
        """Every field that changes the result (not `label` or `group`)."""
        fields = dataclasses.asdict(self)
        fields.pop("label")
        fields.pop("group")
        fields["options"] = [list(pair) for pair in self.options]
        fields["setting_values"] = dict(SETTINGS[self.setting])
        return fields

    @property
    def key(self) -> str:
        """A readable, stable file name for the run's result."""
        digest = hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.kind}-{self.setting}-z{self.latent_dim}-s{self.seed}-{digest}"


@dataclasses.dataclass(frozen=True)
class StudyData:
    """The data of a study and how much of it each evaluation uses.

    Attributes:
        source: a `load_dataset` source (e.g. `../shared/data/mnist22k.npz`).
        batch_size: training (and batch-statistics evaluation) batch size.
        lr: Adam's learning rate.
        eval_images: training and held-out images evaluated after each epoch.
        steps_per_epoch: None for whole epochs (tiny budgets cut them short).
        glo_inference_steps: Adam steps that fit a GLO latent to a held-out image.
        image_size: side of the square images the models are trained at.
        train_images: a fixed random subset of the training images (None: all).
    """

    source: str
    batch_size: int = 64
    lr: float = 1e-4
    eval_images: int = 2000
    steps_per_epoch: int | None = None
    glo_inference_steps: int = 100
    image_size: int = 32
    train_images: int | None = None


def model_options(spec: RunSpec) -> dict:
    """The constructor options of `spec`'s model at its setting (see `SETTINGS`): the
    variant's own (`VARIANTS`), the setting's for the option groups the kind takes, then
    the spec's `options`."""
    from keras_gon.registry import get_kind

    kind_name, variant = VARIANTS[spec.kind]
    kind = get_kind(kind_name)
    setting = SETTINGS[spec.setting]
    options = dict(
        latent_dim=spec.latent_dim,
        width=spec.width,
        activation=spec.activation,
        normalization=setting["normalization"],
    )
    if "origin" in kind.option_groups:
        options.update(
            inner_batch_reduction=setting["inner_batch_reduction"],
            origin_stddev=spec.origin_stddev,
            add_origin=spec.add_origin,
        )
    if kind_name == "gon":
        options["inner_loss"] = setting["gon_inner_loss"]
    if kind_name == "vgon":
        options["step_size"] = setting["vgon_step_size"]
    options.update(variant)
    options.update(dict(spec.options))
    return options


def recipe(spec: RunSpec, data: StudyData):
    """The `keras_gon.training.TrainingRecipe` of one run."""
    from keras_gon.training import TrainingRecipe

    shared = ("image_size", "train_images", "batch_size", "lr", "steps_per_epoch")
    return TrainingRecipe(
        VARIANTS[spec.kind][0],
        data=data.source,
        options=model_options(spec),
        epochs=spec.epochs,
        seed=spec.seed,
        **{name: getattr(data, name) for name in shared},
    )


def build_model(spec: RunSpec, image_shape, num_train: int):
    """The model of `spec` at its setting, built through the registry."""
    from keras_gon.models import build_model
    from keras_gon.registry import get_kind

    kind = get_kind(VARIANTS[spec.kind][0])
    options = {**model_options(spec), "image_shape": image_shape, "seed": spec.seed}
    if "num_examples" in kind.options:
        options["num_examples"] = num_train
    return build_model(kind, **options)


class _Data:
    """The study's pipelines, built once per process and seed."""

    def __init__(self, data: StudyData):
        self.data = data
        self._cache = {}

    def get(self, seed: int, indexed: bool):
        key = (seed, indexed)
        if key not in self._cache:
            self._cache[key] = self._load(seed, indexed)
        return self._cache[key]

    def _load(self, seed, indexed):
        from keras_gon.data import load_dataset, with_example_indices

        data = self.data
        common = dict(
            image_size=data.image_size, batch_size=data.batch_size, train_images=data.train_images
        )
        train, test, info = load_dataset(
            data.source, seed=seed, shuffle_train=not indexed, **common
        )
        if indexed:
            train = with_example_indices(train, data.batch_size, seed=seed)
        ordered, _, _ = load_dataset(data.source, shuffle_train=False, **common)
        full_batches = info.num_train // data.batch_size * data.batch_size  # (drop_remainder)
        train_subset = _first_images(ordered, min(data.eval_images, full_batches), data.batch_size)
        held_out_subset = _first_images(test, min(data.eval_images, info.num_test), data.batch_size)
        return train, test, train_subset, held_out_subset, info


def _first_images(ds, count: int, batch_size: int):
    """The first `count` images of a batched dataset, batched, with their count known."""
    import tensorflow as tf

    first = ds.unbatch().take(count).apply(tf.data.experimental.assert_cardinality(count))
    return first.batch(batch_size).cache()


def _evaluate(model, dataset, statistics: str) -> dict:
    from keras_gon.layers.batch_normalization import inference_statistics

    with inference_statistics(model, statistics):
        return {
            k: float(v) for k, v in model.evaluate(dataset, verbose=0, return_dict=True).items()
        }


def run_one(spec: RunSpec, data: StudyData, pipelines: _Data | None = None) -> dict:
    """Trains `spec` (`keras_gon.training.train` on its `recipe`) and returns its result
    (see the module docstring)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_gon
    from keras_gon.callbacks import EpochEvaluation
    from keras_gon.errors import NonFiniteLossError
    from keras_gon.layers.batch_normalization import batch_normalization_layers
    from keras_gon.training import count_parameters, train

    pipelines = pipelines or _Data(data)
    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seed)
    indexed = VARIANTS[spec.kind][0] == "glo"
    train_data, test, train_subset, held_out_subset, info = pipelines.get(spec.seed, indexed)
    run_recipe = recipe(spec, data)
    model = run_recipe.build(info)
    statistics = SETTINGS[spec.setting]["statistics"]
    # GLO fits every held-out latent by gradient descent: evaluated once, at the end.
    epochs = None if indexed else EpochEvaluation(train_subset, held_out_subset, statistics)
    try:
        run = train(
            run_recipe,
            model=model,
            data=(train_data, test, info),
            callbacks=[epochs] if epochs is not None else [],
            validate=False,
            evaluate=False,
        )
        history, timer = run.history, run.timer
    except NonFiniteLossError:
        history, timer = model.history, None
    losses = history.history.get("loss", []) if history is not None else []
    finite = timer is not None and bool(losses) and bool(np.all(np.isfinite(losses)))
    result = {
        "spec": spec.identity(),
        "key": spec.key,
        "data": dataclasses.asdict(data),
        "metric": REPORTED_METRIC[spec.kind],
        "statistics": statistics,
        "parameters": count_parameters(model),
        "steps": timer.steps if timer else len(losses),
        "seconds": timer.seconds if timer else float("nan"),
        "cpu_seconds": timer.cpu_seconds if timer else float("nan"),
        "steps_per_second": timer.steps_per_second if timer else float("nan"),
        "train_running_loss": [float(v) for v in losses],
        "epochs": epochs.history if epochs is not None else [],
        "finite": finite,
        "versions": {
            "keras_gon": keras_gon.__version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
        },
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if finite:
        test_data = held_out_subset if indexed else test
        result["test"] = _evaluate(model, test_data, statistics)
        result["test_images"] = data.eval_images if indexed else info.num_test
        if statistics != "moving" and batch_normalization_layers(model):
            result["test_moving"] = _evaluate(model, test_data, "moving")
        if indexed:
            result["epochs"] = [
                {"epoch": spec.epochs, **{f"held_out_{k}": v for k, v in result["test"].items()}}
            ]
    return result


def result_path(folder: Path, spec: RunSpec) -> Path:
    """Where the result of `spec` is stored in a study folder."""
    return Path(folder) / "runs" / f"{spec.key}.json"


def load_result(folder: Path, spec: RunSpec) -> dict | None:
    """The stored result of `spec`, or None if it has not finished."""
    path = result_path(folder, spec)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_json_atomically(path: Path, payload) -> None:
    """Writes `payload` as JSON to `path`, whole or not at all (`keras_gon.files`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, payload, indent=1)


def claim_path(folder: Path, spec: RunSpec) -> Path:
    """The file that marks `spec` as being trained (`runs/<key>.claim`, the trainer's pid)."""
    return Path(folder) / "runs" / f"{spec.key}.claim"


def _claim(folder: Path, spec: RunSpec) -> Path | None:
    """Claims `spec` for this process, or returns None while another live process on this
    host holds it. A claim left by a process that died (a killed study) is taken over, so
    several copies of one study command can run side by side and share its runs."""
    import os
    import socket

    path = claim_path(folder, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid, host = path.read_text().split()
            except (OSError, ValueError):  # just created by another process, not yet written
                return None
            if host != socket.gethostname() or _alive(int(pid)):
                return None
            path.unlink(missing_ok=True)  # its process died: take the run over
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(me)
        return path
    return None


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_in_child(spec: RunSpec, data: StudyData, path: str) -> None:
    """A child process's work: one run, its result written to `path`."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    write_json_atomically(Path(path), run_one(spec, data))


def run_study(
    specs: Sequence[RunSpec],
    data: StudyData,
    folder: Path,
    on_result: Callable[[RunSpec, dict], None] | None = None,
    log: Callable[[str], None] = print,
    isolate: bool = True,
) -> dict[str, dict]:
    """Runs every spec without a stored result in `folder`; returns all results by key.

    Finished runs are never recomputed: a study interrupted at any point and
    started again continues with the first missing run. A run being trained is
    claimed (`claim_path`), so two copies of the same study (one per core) share
    the work: each skips the runs the other is training. Each run trains in a
    fresh process (`isolate`): XLA's compiled code accumulates in a process
    (after a few dozen models the JIT could not map more memory here), and a
    crash loses one run, logged and left missing, not the study. `on_result`
    is called after each new result is stored (e.g. to rewrite the report).
    """
    import multiprocessing

    folder = Path(folder)
    unique = list({spec.key: spec for spec in specs}.values())
    pipelines = None if isolate else _Data(data)
    results = {}
    missing = [s for s in unique if load_result(folder, s) is None]
    log(f"{len(unique) - len(missing)} of {len(unique)} runs already stored in {folder}")
    for index, spec in enumerate(unique):
        stored = load_result(folder, spec)
        claim = None if stored is not None else _claim(folder, spec)
        if stored is None and claim is None:
            log(
                f"({index + 1}/{len(unique)}) {spec.key}: being trained by another process, skipped"
            )
            continue
        if claim is not None:
            stored = load_result(folder, spec)  # finished by another process meanwhile?
            if stored is not None:
                claim.unlink(missing_ok=True)
        if stored is None:
            start = time.perf_counter()
            path = result_path(folder, spec)
            try:
                if isolate:
                    child = multiprocessing.get_context("spawn").Process(
                        target=_run_in_child, args=(spec, data, str(path))
                    )
                    child.start()
                    child.join()
                    stored = load_result(folder, spec)
                    if stored is None:
                        log(
                            f"[{index + 1}/{len(unique)}] {spec.key}: FAILED (exit code "
                            f"{child.exitcode}); left missing"
                        )
                        continue
                else:
                    stored = run_one(spec, data, pipelines)
                    write_json_atomically(path, stored)
            finally:
                claim.unlink(missing_ok=True)
            figure = stored.get("test", {}).get(stored["metric"], float("nan"))
            log(
                f"[{index + 1}/{len(unique)}] {spec.key}: {stored['metric']} {figure:.4f} "
                f"({time.perf_counter() - start:.0f} s)"
            )
            if on_result is not None:
                on_result(spec, stored)
        results[spec.key] = stored
    return results


def stored_results(folder: Path, specs: Iterable[RunSpec]) -> dict[str, dict]:
    """The stored results of `specs` by key (missing runs are absent)."""
    found = {}
    for spec in specs:
        result = load_result(folder, spec)
        if result is not None:
            found[spec.key] = result
    return found

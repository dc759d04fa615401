"""Building the built-in presets: each a training recipe (`keras_gon.training`) on its data.

`build_presets` trains every preset of `PRESET_RECIPES` whose data it is given, and the
same recipe for its baseline (the autoencoder for a GON, the VAE for a variational GON:
the same decoder and budget), evaluates both as a user loads them, and writes the preset
folder (`keras_gon.presets.save_to_preset`) with both figures in its metadata, and a
picture of what the preset does. It is resumable: a preset already written is skipped,
and a training killed mid-way continues from its last finished epoch.

    keras-gon presets build --data cifar10=DIR celeba=DIR --names gon_cifar10
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from keras_gon.backup import AtomicBackupAndRestore
from keras_gon.errors import InputError
from keras_gon.files import atomic_write, write_json
from keras_gon.presets import (
    EVALUATION_BATCH,
    METADATA_FILE,
    PRESET_DIR,
    WEIGHTS_FILE,
    held_out_figure,
    load_preset,
    save_to_preset,
)
from keras_gon.training import TrainingRecipe, count_parameters, train

PRESET_DATASETS = {
    "mnist": "mnist22k.npz: 12,000 MNIST training digits, the official 10,000 test digits",
    "fashion_mnist": "the official Fashion-MNIST files (a folder of the IDX files)",
    "cifar10": "a CIFAR-10 folder: train/<class>/*.jpg (25,000) and the official test/ (10,000)",
    "celeba": "a flat folder of CelebA faces (10 % held out, seed 0)",
}
"""The data each preset trains on, by name (`--data NAME=PATH`)."""

MEANINGS = {
    "accuracy": "classification accuracy",
    "bits_per_dim": "bits/dim (8-bit, discretised logistic)",
    "loss": "SSE per image",
}


@dataclasses.dataclass(frozen=True)
class PresetRecipe:
    """A built-in preset: its training recipe, its data and its baseline.

    Attributes:
        name: the preset's name (`from_preset(name)`).
        description: one line for `keras-gon presets`.
        dataset: a key of `PRESET_DATASETS`.
        recipe: the training recipe (its `data` is given at build time).
        baseline: the kind trained with the same recipe for comparison (None: none).
        picture: "reconstructions" or "samples", what the README shows.
    """

    name: str
    description: str
    dataset: str
    recipe: TrainingRecipe
    baseline: str | None = None
    picture: str = "reconstructions"

    def baseline_recipe(self) -> TrainingRecipe:
        """The baseline's recipe: the same budget and decoder options it takes."""
        from keras_gon.registry import get_kind

        taken = set(get_kind(self.baseline).options)
        options = tuple((k, v) for k, v in self.recipe.options if k in taken)
        return self.recipe.replace(kind=self.baseline, options=options)


def _recipe(kind: str, epochs: int, lr: float = 1e-4, image_size: int = 32, **options):
    return TrainingRecipe(
        kind, data=None, options=options, epochs=epochs, lr=lr, image_size=image_size
    )


PRESET_RECIPES = {
    preset.name: preset
    for preset in (
        PresetRecipe(
            "gon_mnist",
            "convolutional GON, MNIST 32x32, latent 32",
            "mnist",
            _recipe("gon", 30, latent_dim=32, width=16),
            baseline="ae",
        ),
        PresetRecipe(
            "vgon_mnist",
            "variational GON (samples), MNIST 32x32, latent 32",
            "mnist",
            _recipe("vgon", 30, lr=1e-3, latent_dim=32, width=16),
            picture="samples",
        ),  # VGON vs VAE on MNIST: benchmarks/REPRODUCTION.md
        PresetRecipe(
            "igon_mnist",
            "implicit GON (SIREN, any resolution), MNIST 28x28, latent 32",
            "mnist",
            _recipe(
                "igon", 20, lr=1e-3, image_size=28, latent_dim=32, hidden_units=64, num_layers=4
            ),
        ),
        PresetRecipe(
            "gon_classifier_mnist",
            "GON classifier (eq. 13) on the origin gradient, MNIST 32x32, latent 32",
            "mnist",
            _recipe("classifier", 30, lr=1e-3, latent_dim=32, width=16),
        ),
        PresetRecipe(
            "gon_fashion_mnist",
            "convolutional GON, Fashion-MNIST 32x32, latent 32",
            "fashion_mnist",
            _recipe("gon", 10, latent_dim=32, width=16),
            baseline="ae",
        ),
        PresetRecipe(
            "gon_cifar10",
            "convolutional GON, CIFAR-10 32x32 colour, latent 256",
            "cifar10",
            _recipe("gon", 12, latent_dim=256, width=32),
            baseline="ae",
        ),
        PresetRecipe(
            "vgon_cifar10",
            "variational GON (samples from a fitted prior), CIFAR-10 32x32 colour, latent 256",
            "cifar10",
            _recipe("vgon", 10, lr=1e-3, latent_dim=256, width=32, prior="fitted"),
            baseline="vae",
            picture="samples",
        ),
        PresetRecipe(
            "vgon_celeba64",
            "variational GON (samples from a fitted prior), CelebA 64x64 faces, latent 128",
            "celeba",
            _recipe("vgon", 15, lr=1e-3, image_size=64, latent_dim=128, width=16, prior="fitted"),
            baseline="vae",
            picture="samples",
        ),
    )
}
"""Every built-in preset by name."""


def parse_data(items: Sequence[str]) -> dict[str, str]:
    """`NAME=PATH` items (`--data`) as a mapping; NAME is a key of `PRESET_DATASETS`."""
    data = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise InputError(
                f"--data takes NAME=PATH items (NAME one of "
                f"{', '.join(PRESET_DATASETS)}), got {item!r}"
            )
        if name not in PRESET_DATASETS:
            raise InputError(
                f"unknown preset data {name!r}: expected one of {', '.join(PRESET_DATASETS)}"
            )
        data[name] = path
    return data


def _evaluation_data(recipe: TrainingRecipe):
    """The test split in batches of `EVALUATION_BATCH` (the figure's protocol)."""
    test_recipe = recipe.replace(batch_size=EVALUATION_BATCH, train_images=None)
    return test_recipe.load_data(shuffle=False)[1]


class _TrainingTime(keras.callbacks.Callback):
    """Adds the training seconds so far (across resumed processes) to each epoch's logs,
    which the backup keeps (listed before it)."""

    def __init__(self, backup: AtomicBackupAndRestore):
        super().__init__()
        self.backup = backup
        self.seconds = 0.0
        self._start = None
        self._before = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        if self._before is None:  # the backup has restored its logs by now
            self._before = float(self.backup.restored_logs.get("training_seconds", 0.0))

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = self._before + time.perf_counter() - self._start
        if logs is not None:
            logs["training_seconds"] = self.seconds

    def on_train_end(self, logs=None):
        if self._before is None:  # resumed after its last epoch: no epoch ran here
            self.seconds = float(self.backup.restored_logs.get("training_seconds", 0.0))


def _train_and_evaluate(recipe: TrainingRecipe, work: Path, log) -> tuple:
    """Trains `recipe` (resumable in `work/backup`), saves and reloads it as a preset and
    evaluates it: `(model, staged preset folder, metric, value, seconds, steps, info)`."""
    data = recipe.load_data()
    model = recipe.build(data[2])
    backup = AtomicBackupAndRestore(work / "backup", fingerprint={"recipe": repr(recipe)})
    if backup.exists():
        backup.check_fingerprint(backup.read_state())
        log(f"{work.parent.name}: resuming {work.name} after epoch {backup.read_state()['epoch']}")
    clock = _TrainingTime(backup)
    train(recipe, model=model, data=data, callbacks=[clock, backup], validate=False, evaluate=False)
    staging = work / "preset"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_to_preset(model, staging)
        metric, value = held_out_figure(load_preset(staging), _evaluation_data(recipe))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    steps, seconds = backup.steps, clock.seconds
    backup.delete()
    return model, staging, metric, value, seconds, steps, data[2]


def _save_picture(path: Path, preset: PresetRecipe, model, recipe: TrainingRecipe) -> None:
    """The README's picture of the preset: held-out reconstructions or samples, enlarged."""
    from keras_gon.plotting import save_image_rows

    test = recipe.replace(batch_size=16, train_images=None).load_data(shuffle=False)[1]
    batch = next(iter(test))
    images = np.asarray(batch[0] if isinstance(batch, tuple) else batch)[:16]
    if preset.picture == "samples" and getattr(model, "prior", "standard") == "fitted":
        rows = [
            (
                "samples: z ~ the normal fitted to the training posterior",
                np.asarray(model.sample(16, seed=0)),
            ),
            (
                "samples: z ~ N(0, I), the paper's prior",
                np.asarray(model.sample(16, seed=0, prior="standard")),
            ),
        ]
    elif preset.picture == "samples":
        rows = [("samples: z ~ N(0, I), one decoder pass", np.asarray(model.sample(32, seed=0)))]
    else:
        rows = [
            ("held-out images", images),
            ("reconstructions", np.asarray(model.reconstruct(images))),
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(
        path,
        lambda target: save_image_rows(
            target, rows, columns=8, scale=1.5 if recipe.size < 64 else 2.0
        ),
    )


def build_presets(
    data: Mapping[str, str],
    names: Sequence[str] | None = None,
    out: Path | None = None,
    work: Path | None = None,
    pictures: Path | None = None,
    rebuild: bool = False,
    log: Callable[[str], None] = print,
    recipes: Mapping[str, PresetRecipe] | None = None,
) -> list[dict]:
    """Builds the presets `names` (default: every preset whose data is in `data`).

    Args:
        data: `{dataset name: source}` (`PRESET_DATASETS`).
        names: the presets to build.
        out: where the preset folders go (default: the package's `preset_files`).
        work: where training keeps its backups and the baselines' results.
        pictures: where each preset's PNG goes (None: none).
        rebuild: train presets that are already built again (else a built preset only
            gets its baseline if it lacks it).
        log: where progress lines go.
        recipes: the presets' recipes (default: `PRESET_RECIPES`).

    Returns:
        The metadata of every preset built or found.
    """
    out = Path(out or PRESET_DIR)
    work = Path(work or Path("runs") / "preset-build")
    known = PRESET_RECIPES if recipes is None else recipes
    names = list(names or [n for n, p in known.items() if p.dataset in data])
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InputError(f"unknown presets {unknown}: expected some of {sorted(known)}")
    missing = sorted({known[n].dataset for n in names} - set(data))
    if missing:
        raise InputError(
            f"give --data for {', '.join(f'{m}=PATH' for m in missing)} "
            f"({'; '.join(PRESET_DATASETS[m] for m in missing)})"
        )
    rows = []
    for name in names:
        preset = known[name]
        recipe = preset.recipe.replace(data=data[preset.dataset])
        target = out / name
        try:
            if (target / METADATA_FILE).is_file() and not rebuild:
                rows.append(_complete(preset, recipe, target, work / name, pictures, log))
            else:
                rows.append(_build_one(preset, recipe, out, work / name, pictures, log))
        except BaseException:
            _prune_empty(work)  # a killed training's backup stays for the next build
            raise
    return rows


def _prune_empty(folder: Path) -> None:
    """Removes the empty folders below `folder` (and it, if empty), deepest first."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


def _replace_preset(model, target: Path, metadata: dict) -> None:
    """Writes the preset to `target`, replacing what is there only once it is whole."""
    new = target.parent / f".new-{target.name}"
    old = target.parent / f".old-{target.name}"
    shutil.rmtree(new, ignore_errors=True)
    try:
        save_to_preset(model, new, metadata)
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        new.rename(target)
    finally:
        shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _baseline(preset: PresetRecipe, recipe: TrainingRecipe, work: Path, log) -> dict:
    """The baseline's figures: stored in `work/baseline.json` once trained (resumable)."""
    if preset.baseline is None:
        return {}
    work.mkdir(parents=True, exist_ok=True)
    stored = work / "baseline.json"
    if stored.is_file():
        return json.loads(stored.read_text())
    baseline_recipe = dataclasses.replace(preset, recipe=recipe).baseline_recipe()
    model, staging, metric, value, seconds, steps, _ = _train_and_evaluate(
        baseline_recipe, work / "baseline", log
    )
    baseline = {
        "baseline_kind": preset.baseline,
        "baseline_value": value,
        "baseline_parameters": count_parameters(model),
        "baseline_training_seconds": round(seconds, 1),
        "baseline_steps": steps,
    }
    write_json(stored, baseline)
    shutil.rmtree(staging, ignore_errors=True)
    log(f"{preset.name}: baseline {preset.baseline} held-out {metric} {value:.4f}")
    return baseline


def _holds_optimizer_state(folder: Path) -> bool:
    """Whether a preset's weights file holds an optimiser's variables (older presets)."""
    import h5py

    with h5py.File(folder / WEIGHTS_FILE, "r") as weights:
        return "optimizer" in weights


def _complete(
    preset: PresetRecipe,
    recipe: TrainingRecipe,
    target: Path,
    work: Path,
    pictures: Path | None,
    log,
) -> dict:
    """A preset already built: its baseline added if missing, saved again as the model
    alone (no optimiser state) if it was not, its picture drawn if `pictures` lacks it;
    the weights and figure unchanged."""
    metadata = json.loads((target / METADATA_FILE).read_text())
    needs_baseline = preset.baseline is not None and "baseline_value" not in metadata
    model = load_preset(target)
    needs_prior = dict(recipe.options).get("prior", "standard") != getattr(
        model, "prior", "standard"
    )
    picture = None if pictures is None else Path(pictures) / f"{preset.name}.png"
    if not (needs_baseline or needs_prior or _holds_optimizer_state(target)):
        if picture is not None and not picture.is_file():
            _save_picture(picture, preset, model, recipe)
            log(f"{preset.name}: picture {picture}")
        log(f"{preset.name}: already built in {target}")
        return {**metadata, "bytes": sum(f.stat().st_size for f in target.iterdir())}
    if needs_baseline:
        metadata.update(_baseline(preset, recipe, work, log))
    if needs_prior:
        model = model.with_prior(dict(recipe.options)["prior"])
        if model.prior == "fitted":
            model.fit_latent_statistics(recipe.load_data(shuffle=False)[0])
    saved = {
        k: v
        for k, v in metadata.items()
        if k not in ("class_name", "parameters", "keras_gon_version", "keras_version")
    }
    saved.pop("sampling_prior", None)
    saved.update(_prior_metadata(model))
    if picture is not None and (needs_prior or not picture.is_file()):
        # before the preset: a failed drawing leaves the old preset, so a build redraws it
        _save_picture(picture, preset, model, recipe)
        log(f"{preset.name}: picture {picture}")
    _replace_preset(model, target, saved)
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"{preset.name}: already built in {target}; saved again as the model alone"
        + (" with its baseline's figure" if needs_baseline else "")
        + (f", sampling from the {model.prior} prior" if needs_prior else "")
    )
    metadata = json.loads((target / METADATA_FILE).read_text())
    return {**metadata, "bytes": sum(f.stat().st_size for f in target.iterdir())}


def _prior_metadata(model) -> dict:
    """What a variational preset samples from, for its metadata."""
    if getattr(model, "prior", None) != "fitted":
        return {}
    count = int(model.latent_count.numpy())
    return {
        "sampling_prior": f"a normal fitted to the aggregate posterior of {count:,} training "
        "images (the ELBO and bits/dim keep N(0, I))"
    }


def _build_one(
    preset: PresetRecipe, recipe: TrainingRecipe, out: Path, work: Path, pictures: Path | None, log
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    baseline = _baseline(preset, recipe, work, log)
    model, staging, metric, value, seconds, steps, info = _train_and_evaluate(
        recipe, work / "model", log
    )
    metadata = {
        "name": preset.name,
        "kind": recipe.kind,
        "description": preset.description,
        "data": Path(str(recipe.data)).name,
        "dataset": preset.dataset,
        "num_train": info.num_train,
        "num_test": info.num_test,
        "split": info.split,
        "image_size": recipe.size,
        "epochs": recipe.epochs,
        "steps": steps,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "seed": recipe.seed,
        "training_seconds": round(seconds, 1),
        "held_out_metric": metric,
        "held_out_value": value,
        "held_out_meaning": (
            "MSE per pixel" if recipe.kind == "igon" and metric == "loss" else MEANINGS[metric]
        ),
        "evaluation": f"keras evaluate, batches of {EVALUATION_BATCH}, no XLA",
        **baseline,
        **_prior_metadata(model),
    }
    target = out / preset.name
    _replace_preset(model, target, metadata)
    shutil.rmtree(staging, ignore_errors=True)
    size = sum(f.stat().st_size for f in target.iterdir())
    if pictures is not None:
        _save_picture(Path(pictures) / f"{preset.name}.png", preset, model, recipe)
    versus = f"; {preset.baseline} {baseline['baseline_value']:.4f}" if baseline else ""
    log(
        f"{preset.name}: held-out {metric} {value:.4f}{versus} after {steps} steps "
        f"({seconds:.0f} s), {size / 2**20:.2f} MiB"
    )
    shutil.rmtree(work, ignore_errors=True)
    return {**metadata, "bytes": size}

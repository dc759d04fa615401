"""`keras-gon train KIND`: train any registered model kind and write a run folder.

    keras-gon train gon                                   # offline mnist5k, 32x32
    keras-gon train gon --data mnist --epochs 5 --out runs/gon-mnist   # TFDS
    keras-gon train glo --data ../shared/data/mnist10k.npz --steps 300 --out /tmp/glo

A run folder holds `model.keras`, `metrics.json` and `reconstructions.png`
(and `samples.png` for models that sample), each written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from keras_gon.cli.common import (
    RUN_PICTURES,
    HelpFormatter,
    add_data_arguments,
    first_images,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
    recorded_data,
    seed,
)
from keras_gon.errors import InputError, NonFiniteLossError
from keras_gon.options import command_line_options
from keras_gon.registry import MODEL_KINDS
from keras_gon.validation import check_square_image_shape, count_noun

RECONSTRUCTION_COUNT = 16
SAMPLE_COUNT = 64

_VALUE_TYPES = {
    "positive_int": positive_int,
    "positive_float": positive_float,
    "non_negative_float": non_negative_float,
    "fraction": fraction,
}


def _flag(option) -> tuple:
    """(flags, option name, argparse keywords, group) of one `keras_gon.options.Option`."""
    keywords = dict(help=option.help)
    if option.value in _VALUE_TYPES:
        keywords["type"] = _VALUE_TYPES[option.value]
    elif option.value == "flag":
        keywords.update(action="store_const", const=True)
    elif option.value == "choice":
        keywords["choices"] = option.choices
    return option.flags, option.name, keywords, option.groups[0]


MODEL_FLAGS = tuple(_flag(option) for option in command_line_options())
"""The command-line flags of the model options (`keras_gon.options.OPTIONS`):
(flags, option name, argparse keywords, group)."""
GROUP_MESSAGES = {
    "model": "not an option of the {kind}",
    "decoder": "only for models with the convolutional decoder",
    "origin": "the {kind} has no origin gradient (GON options)",
    "encoder": "only for the autoencoder baselines with an encoder (ae, vae)",
    "variational": "only for variational models (vgon, vae)",
    "implicit": "only for the implicit GON (igon)",
    "glo": "only for glo",
    "classifier": "only for the classifier",
}


RECIPE_ARGUMENTS = (
    "data",
    "image_size",
    "channels",
    "train_images",
    "batch_size",
    "lr",
    "epochs",
    "steps",
    "seed",
    "data_dir",
    "manual_dir",
)
"""The options of `train` that are `keras_gon.training.TrainingRecipe` fields as given."""


class _RawDescription(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, the description's list of kinds kept as written."""


def add_parser(commands) -> None:
    """Registers `keras-gon train`."""
    kinds = "\n".join(f"  {k.name:<11} {k.description}" for k in MODEL_KINDS.values())
    train = commands.add_parser(
        "train",
        help="train a model and write a run folder",
        formatter_class=_RawDescription,
        description=f"Train a model of one of these kinds and write a run folder:\n{kinds}",
    )
    train.add_argument("model", choices=tuple(MODEL_KINDS), help="the model kind (listed above)")
    add_data_arguments(train, default="mnist5k")
    train.add_argument("--epochs", type=positive_int, default=10, help="training epochs")
    train.add_argument("--steps", type=positive_int, help="train this many steps instead of epochs")
    train.add_argument("--batch-size", type=positive_int, default=64, help="global batch size")
    train.add_argument(
        "--image-size", type=positive_int, help="image size (default: the kind's, 32; 28 for igon)"
    )
    train.add_argument(
        "--train-images",
        type=positive_int,
        metavar="N",
        help="train on a fixed random subset of N training images (seed 0)",
    )
    train.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="image folders: 1 (grey) or 3 (colour) (default: colour if any image has it)",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        help="Adam learning rate (default: the kind's, as its preset was "
        "trained: 1e-3 for vgon, igon and classifier, 1e-4 for the others)",
    )
    train.add_argument("--seed", type=seed, default=0, help="seed of data order and weights")
    train.add_argument("--out", type=Path, help="run folder (default runs/<model>-<time>)")
    train.add_argument(
        "--from-preset",
        metavar="PRESET",
        help="fine-tune a pretrained preset (a name from `keras-gon presets`, a "
        "preset folder or a .keras file) instead of a new model; its options are the "
        "preset's, but --prior may change a vgon or vae preset's sampling prior",
    )
    for flags, _, keywords, _ in MODEL_FLAGS:
        train.add_argument(*flags, **keywords)
    train.add_argument(
        "--kl-warmup-epochs",
        type=positive_int,
        help="vgon/vae: raise β from 0 over this many epochs",
    )
    train.add_argument("--no-jit", action="store_true", help="turn XLA compilation off")
    train.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker", "tpu"),
        default="default",
        help="tf.distribute strategy: mirrored (local GPUs), multiworker (TF_CONFIG), tpu",
    )
    train.add_argument("--tpu", help="--strategy tpu: TPU name or grpc:// address")
    train.add_argument(
        "--mixed-precision",
        choices=("mixed_float16", "mixed_bfloat16"),
        help="Keras mixed-precision dtype policy",
    )
    train.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic ops: the same --seed gives bit-identical losses",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last finished epoch",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the finished run in --out (refused without it)",
    )
    train.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    train.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras's progress output"
    )
    train.set_defaults(func=train_command, settings=True)


def model_options(args) -> dict:
    """The constructor options of `args.model` given on the command line; flags of option
    groups the kind does not take are refused by name."""
    kind = MODEL_KINDS[args.model]
    options = {}
    taken = set(kind.options)
    refused = {}
    for flags, name, _, group in MODEL_FLAGS:
        value = getattr(args, name)
        if value is not None and name in taken:
            options[name] = value
        elif value is not None:
            refused.setdefault(group, []).append(flags[0])
    if not getattr(args, "from_preset", None):
        options = {**dict(kind.command_line_options), **options}
    if args.kl_warmup_epochs is not None and "variational" not in kind.option_groups:
        refused.setdefault("variational", []).append("--kl-warmup-epochs")
    for group, flags in refused.items():
        raise InputError(f"{', '.join(flags)}: " + GROUP_MESSAGES[group].format(kind=kind.name))
    return options


def _preset_model(args, kind, strategy):
    """The preset to fine-tune, of the kind asked for; model flags refused by name (the
    preset fixes the model's options, and its image size and channels), except `--prior`,
    which a variational preset takes (the same weights, sampling from the prior asked for)."""
    from keras_gon.presets import load_preset
    from keras_gon.registry import kind_of

    given = [
        flags[0]
        for flags, name, _, _ in MODEL_FLAGS
        if getattr(args, name) is not None and name != "prior"
    ]
    if given:
        raise InputError(
            f"{', '.join(given)}: the preset {args.from_preset} fixes the model's "
            "options (train a new model to change them)"
        )
    model_options(args)  # flags the kind does not take, refused by name before loading
    prior = getattr(args, "prior", None)
    with strategy.scope():
        model = load_preset(args.from_preset)
    if kind_of(model).name != kind.name:
        raise InputError(
            f"--from-preset {args.from_preset} holds a {kind_of(model).name} "
            f"model: train it with `keras-gon train {kind_of(model).name}`"
        )
    height, _, channels = model.image_shape
    for flag, given, own in (
        ("--image-size", args.image_size, height),
        ("--channels", args.channels, channels),
    ):
        if given is not None and given != own:
            raise InputError(
                f"{flag} {given}: the preset {args.from_preset} takes {height}x{height} "
                f"images of {count_noun(channels, 'channel')} (leave {flag} out, or "
                "train a new model)"
            )
    if prior is not None and prior != model.prior:
        with strategy.scope():
            model = model.with_prior(prior)
    return model


def _backup(args, model, info, out: Path):
    """The run's `AtomicBackupAndRestore` in `out/backup` (epoch runs), after the --resume checks."""
    from keras_gon.backup import AtomicBackupAndRestore

    if args.resume and args.out is None:
        raise InputError("--resume needs --out, the folder of the run to continue")
    if args.steps:
        if args.resume:
            raise InputError(
                "--resume needs --epochs: a --steps run is one epoch, backed up at its end"
            )
        return None
    config = {
        k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")
    }
    fingerprint = {
        "model": args.model,
        "config": config,
        "data": recorded_data(args.data),
        "image_shape": info.image_shape,
        "train_images": args.train_images,  # the subset asked for (None: all)
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "mixed_precision": args.mixed_precision,
    }
    backup = AtomicBackupAndRestore(out / "backup", fingerprint=fingerprint)
    if backup.exists() and not args.resume:
        raise InputError(
            f"{out} holds an interrupted run: pass --resume to continue it, or another --out"
        )
    if args.resume and not backup.exists() and (out / "metrics.json").exists():
        raise InputError(f"nothing to resume: the run in {out} has finished")
    if args.resume and not backup.exists():
        raise InputError(f"nothing to resume in {out}: no interrupted run there")
    if backup.exists():
        backup.check_fingerprint(backup.read_state())  # before training starts
    return backup


RUN_FILES = ("model.keras", "reconstructions.png", "samples.png", "metrics.json")
"""What a run folder holds; `metrics.json` is written last: a run with it has finished."""


def run_folder(args) -> tuple[Path, bool]:
    """`(folder, created)`: the run's folder, made now when it is new.

    An explicit `--out` holding a finished run is refused unless `--overwrite`; the
    default `runs/<model>-<time>` gets a suffix when a run started in the same second
    took the name (the folder is created atomically, so simultaneous starts differ).
    """
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} is a file, not a folder")
        if (out / "metrics.json").exists() and not (args.overwrite or args.resume):
            raise InputError(
                f"--out {out} holds a finished run: give another --out, or "
                "--overwrite to replace it"
            )
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        return out, created
    base = Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for index in range(1, 1000):
        out = base if index == 1 else base.with_name(f"{base.name}-{index}")
        try:
            out.mkdir()
        except FileExistsError:
            continue
        return out, True
    raise InputError(f"cannot find a free run folder name next to {base}")


def train_command(args) -> dict:
    """`keras-gon train`: trains (`keras_gon.training.train`), then writes model.keras,
    the PNGs and metrics.json. The files are written in a staging folder and moved into
    the run folder, metrics.json last, only once all are written: a run that fails leaves
    nothing of its own behind, and a finished run it replaces (`--overwrite`) stays whole
    until then."""
    import shutil

    import keras

    from keras_gon.distribute import make_strategy, worker_dir
    from keras_gon.training import TrainingRecipe

    kind = MODEL_KINDS[args.model]
    args.lr = kind.learning_rate if args.lr is None else args.lr
    keras.utils.set_random_seed(args.seed)
    strategy = make_strategy(args.strategy, tpu=args.tpu)  # before any other TF op (multiworker)
    preset = _preset_model(args, kind, strategy) if args.from_preset else None
    if preset is not None:
        args.image_size = args.image_size or preset.image_shape[0]
        args.channels = args.channels or preset.image_shape[-1]
    if args.image_size is not None and "decoder" in kind.option_groups:  # before the data
        try:
            check_square_image_shape((args.image_size, args.image_size, 1))
        except InputError as error:
            raise InputError(f"--image-size {args.image_size}: {error}") from None
    recipe = TrainingRecipe(
        kind=args.model,
        options=model_options(args),
        **{name: getattr(args, name) for name in RECIPE_ARGUMENTS},
        # None: the model's fastest choice, off under a strategy; Keras turns it off under
        # op determinism too (not every XLA kernel is deterministic).
        jit_compile=False if args.no_jit or args.deterministic else None,
    )
    data = recipe.load_data()
    if data[2].summary:
        print(data[2].summary)
    class_names = data[2].class_names
    if class_names and preset is None and args.num_classes is None:
        if "num_classes" in recipe.model_kind.options:  # a folder's classes, counted
            recipe = recipe.replace(
                options={**dict(recipe.options), "num_classes": len(class_names)}
            )
    # the classes the model will have: the preset's, or --num-classes, or the folder's count
    # (a default count only meets data without class folders, which nothing here checks)
    num_classes = (
        getattr(preset, "num_classes", None)
        if preset is not None
        else dict(recipe.options).get("num_classes")
    )
    if num_classes is not None and len(class_names) > num_classes:
        shown = ", ".join(class_names[:5]) + (", ..." if len(class_names) > 5 else "")
        found = f"{args.data} has {len(class_names)} classes ({shown})"
        if preset is not None:
            raise InputError(
                f"--from-preset {args.from_preset}: {found}, the preset's classifier has "
                f"{num_classes}: train a new classifier with --num-classes {len(class_names)}"
            )
        raise InputError(
            f"--num-classes {num_classes}: {found}: give --num-classes {len(class_names)} or "
            "more, or leave it out"
        )
    if args.train_images and 0 <= data[2].num_train < args.train_images:
        print(
            f"keras-gon: warning: --train-images {args.train_images:,}: the data has "
            f"{count_noun(data[2].num_train, 'training image')}; training on all of them",
            file=sys.stderr,
        )
    out, created = run_folder(args)
    out = worker_dir(strategy, out)  # the chief writes `out`, other workers out/<task>-<index>
    had_backup = (out / "backup").exists()
    try:
        return _train_into(args, recipe, data, preset, strategy, out)
    except BaseException as error:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        elif not had_backup and not isinstance(error, KeyboardInterrupt):
            shutil.rmtree(out / "backup", ignore_errors=True)
        if isinstance(error, NonFiniteLossError):
            raise NonFiniteLossError(f"{error}; nothing was saved to {out}") from None
        raise


def _publish(out: Path, stage: Path) -> None:
    """Moves the staged run files into `out` (metrics.json last); when they replace a
    finished run, removes its files that this one did not write (the pictures of `sample`,
    `render` and `interpolate` included). Other files in `out` stay."""
    replacing = (out / "metrics.json").exists()
    pictures = [f"{name}.png" for name in RUN_PICTURES]
    for name in dict.fromkeys([n for n in RUN_FILES if n != "metrics.json"] + pictures):
        if (stage / name).exists():
            os.replace(stage / name, out / name)
        elif replacing:
            (out / name).unlink(missing_ok=True)
    os.replace(stage / "metrics.json", out / "metrics.json")


def _train_into(args, recipe, data, preset, strategy, out: Path) -> dict:
    """Trains in `out` (its backup for --resume) and publishes the run's files there."""
    import shutil
    import warnings

    import keras
    import numpy as np

    from keras_gon.callbacks import KLWarmup, ReconstructionImages
    from keras_gon.resources import check_memory, decoding_bytes
    from keras_gon.training import train

    out.mkdir(parents=True, exist_ok=True)
    _, test_ds, info = data
    with strategy.scope():  # the model's variables are mirrored across the replicas
        model = preset if preset is not None else recipe.build(info)
    # weights, gradients and Adam's two moments, and a batch's passes, from the shapes
    weights = sum(int(np.prod(v.shape)) for v in model.weights)
    check_memory(
        4 * 4 * weights + 3 * decoding_bytes(model, args.batch_size),
        f"training {args.model} with --batch-size {args.batch_size}",
        ": choose a smaller --latent-dim, --width or --batch-size",
    )
    backup = _backup(args, model, info, out)
    batches_per_epoch = info.num_train // args.batch_size
    callbacks = [*([backup] if backup else [])]
    sample = first_images(test_ds, RECONSTRUCTION_COUNT)
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
        callbacks.append(ReconstructionImages(sample, str(out / "logs" / "images")))
    if args.kl_warmup_epochs:
        callbacks.append(KLWarmup(args.kl_warmup_epochs * max(batches_per_epoch, 1)))
    with warnings.catch_warnings():  # (reported below as one line)
        warnings.filterwarnings("ignore", "every image of the first training batch", RuntimeWarning)
        run = train(
            recipe,
            model=model,
            data=data,
            strategy=strategy,
            callbacks=callbacks,
            verbose=args.verbose,
        )
    reconstructions = np.asarray(model.reconstruct_batch(sample))  # eager: no trace for 16
    collapsed = run.collapsed
    if collapsed:
        print(
            "keras-gon: warning: every training image gets the same reconstruction: training "
            f"collapsed to a constant output; try a lower --lr than {args.lr:g}",
            file=sys.stderr,
        )
    stage = out / f".staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        _write_run(args, run, stage, sample, reconstructions, collapsed, backup, out)
        _publish(out, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if backup:  # the results are written: the backup is no longer needed
        backup.delete()
    print(
        f"trained {args.model} for {count_noun(run.steps, 'step')} "
        f"({run.timer.steps_per_second:.1f} steps/s): "
        f"held-out loss {run.held_out['loss']:.2f}; wrote {out}"
    )
    return json.loads((out / "metrics.json").read_text())


def _recorded_preset(source: str | None) -> str | None:
    """`--from-preset` as a run records it: a built-in preset's name, or the absolute path
    of a preset folder or .keras file."""
    from keras_gon.presets import available_presets

    if source is None or source in available_presets():
        return source
    return str(Path(source).expanduser().absolute())


def _write_run(
    args, run, stage: Path, sample, reconstructions, collapsed, backup, out: Path
) -> None:
    """Writes the run's files into `stage`."""
    import keras
    import numpy as np

    import keras_gon
    from keras_gon.files import atomic_write, write_json
    from keras_gon.plotting import save_image_rows, save_reconstructions

    model, info = run.model, run.info
    atomic_write(stage / "model.keras", model.save)
    atomic_write(
        stage / "reconstructions.png",
        lambda path: save_reconstructions(path, sample, reconstructions),
    )
    if hasattr(model, "sample"):  # models that can sample also write a sample grid
        images = np.asarray(model.sample(SAMPLE_COUNT, seed=args.seed))
        atomic_write(
            stage / "samples.png", lambda path: save_image_rows(path, [("samples", images)])
        )
    # (a run resumed after its last epoch trains no epoch: the backup has its loss)
    train_loss = (
        run.train_loss if run.history.history.get("loss") else float(backup.restored_logs["loss"])
    )
    steps = backup.steps if backup else run.steps
    batches_per_epoch = info.num_train // args.batch_size
    held_out = run.held_out
    metrics = {
        "model": args.model,
        "from_preset": _recorded_preset(args.from_preset),  # None: trained from scratch
        "data": recorded_data(args.data),
        "image_shape": list(info.image_shape),
        "num_train": info.num_train,
        "num_test": info.num_test,
        "split": info.split,
        "class_names": list(info.class_names),
        "skipped_files": list(info.skipped),
        "steps": steps,
        "epochs": steps / max(batches_per_epoch, 1),
        "train_images": args.train_images,  # the subset asked for (None: all)
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "jit_compile": bool(model.jit_compile),
        "strategy": args.strategy,
        "replicas": int(model.distribute_strategy.num_replicas_in_sync),
        "mixed_precision": args.mixed_precision,
        "deterministic": args.deterministic,
        "resumed_from_epoch": backup.initial_epoch if backup else None,
        "train_loss": train_loss,
        "test_loss": float(held_out["loss"]),
        "collapsed": collapsed,
        "seconds": run.seconds,
        "steps_per_second": run.timer.steps_per_second,
        "parameters": run.parameters,
        "config": model.get_config(),
        "versions": {
            "keras_gon": keras_gon.__version__,
            "keras": keras.__version__,
            "tensorflow": __import__("tensorflow").__version__,
        },
    }
    # vgon, vae: the -ELBO as bits/dim where the likelihood is a probability of the data,
    # else in nats (keras_gon.losses.elbo_metric_names); the classifier's accuracy
    for name in ("bits_per_dim", "negative_elbo_nats", "accuracy"):
        if name in held_out:
            metrics[f"test_{name}"] = float(held_out[name])
            if run.history.history.get(name):  # (none when a resumed run trained no epoch)
                metrics[f"train_{name}"] = float(run.history.history[name][-1])
    write_json(stage / "metrics.json", metrics)

"""The `keras-gon` command line: train and evaluate GONs.

    keras-gon train gon                                   # offline mnist5k, 32x32
    keras-gon train gon --data mnist --epochs 5 --out runs/gon-mnist   # TFDS
    keras-gon train gon --data ../shared/data/mnist10k.npz --steps 300 --out /tmp/run
    keras-gon evaluate /tmp/run --data ../shared/data/mnist10k.npz

Bad input (a missing file, a wrong shape, pixels out of range, an unknown
dataset...) prints one `keras-gon: error: ...` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_gon import cli_implicit
from keras_gon.errors import InputError

RECONSTRUCTION_COUNT = 16
SAMPLE_COUNT = 64


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from keras_gon.distribute import STRATEGIES
    from keras_gon.layers.conv_decoder import NORMALIZATIONS
    from keras_gon.runtime import PRECISIONS
    from keras_gon.losses import LIKELIHOODS

    parser = argparse.ArgumentParser(
        prog="keras-gon", description="Gradient Origin Networks in Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model and write a run folder")
    train.add_argument("model", choices=sorted(MODEL_BUILDERS), help="model to train")
    train.add_argument(
        "--data",
        default="mnist5k",
        help="mnist5k (offline default), a TFDS name (mnist, fashion_mnist, cifar10, ...), "
        "a .npz in the keras.datasets layout, or a directory of IDX files",
    )
    train.add_argument("--data-dir", help="TFDS data_dir")
    train.add_argument("--manual-dir", help="TFDS manual_dir (for manually downloaded files)")
    train.add_argument("--epochs", type=_positive_int, default=10)
    train.add_argument(
        "--steps", type=_positive_int, help="train for this many steps instead of --epochs"
    )
    train.add_argument("--batch-size", type=_positive_int, default=64)
    train.add_argument("--latent-dim", "--nz", type=_positive_int, default=32)
    train.add_argument("--width", "--ngf", type=_positive_int, default=16)
    train.add_argument(
        "--image-size", type=_positive_int, help="image size (default: the model's, 32 for gon)"
    )
    train.add_argument("--lr", type=_positive_float, default=1e-4, help="Adam learning rate")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--activation", default="elu")
    train.add_argument("--normalization", choices=NORMALIZATIONS, default="layer")
    train.add_argument("--num-steps", type=_positive_int, default=1, help="inner gradient steps")
    train.add_argument("--step-size", type=_positive_float, default=1.0)
    train.add_argument("--detach", action="store_true", help="stop gradients through z")
    train.add_argument("--origin-stddev", type=float, default=0.0)
    train.add_argument(
        "--kl-weight", "--beta", type=_non_negative_float, help="vgon/vae: β, the KL weight (1)"
    )
    train.add_argument(
        "--likelihood", choices=LIKELIHOODS,
        help="vgon/vae: p(x|z) (discretized_logistic: 8-bit grey levels, real bits/dim; "
        "bernoulli: binarised images; bce: the authors' cross-entropy on grey levels, nats)",
    )
    train.add_argument(
        "--likelihood-stddev", type=_positive_float, help="vgon/vae: gaussian p(x|z) stddev (0.1)"
    )
    train.add_argument(
        "--kl-warmup-epochs", type=_positive_int, help="vgon/vae: raise β from 0 over N epochs"
    )
    train.add_argument("--out", type=Path, help="run folder (default runs/<model>-<time>)")
    train.add_argument("--no-jit", action="store_true", help="turn XLA compilation off")
    train.add_argument(
        "--strategy", choices=STRATEGIES, default="default",
        help="tf.distribute strategy: mirrored (local GPUs), multiworker (TF_CONFIG), tpu",
    )
    train.add_argument("--tpu", help="--strategy tpu: TPU name or grpc:// address (default TPU_NAME)")
    train.add_argument(
        "--mixed-precision", choices=PRECISIONS[1:], help="Keras mixed-precision dtype policy"
    )
    train.add_argument(
        "--deterministic", action="store_true",
        help="deterministic ops: the same --seed gives bit-identical losses",
    )
    train.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its last finished epoch (backed up in OUT/backup)",
    )
    train.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    cli_implicit.add_train_arguments(train)  # igon: --hidden-units, --num-layers, --w0, ...

    evaluate = commands.add_parser("evaluate", help="held-out loss of a trained run")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--data", help="data source (default: the one the run was trained on)")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--manual-dir")
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    export = commands.add_parser(
        "export", help="export a run's model as a versioned SavedModel for TF-Serving"
    )
    export.add_argument("run_dir", type=Path)
    export.add_argument(
        "--to", type=Path, required=True,
        help="model base path, e.g. saved_models/NAME; writes NAME/<next version>/",
    )
    sample = commands.add_parser("sample", help="write a PNG grid of a run's samples z ~ N(0, I)")
    sample.add_argument("run_dir", type=Path)
    sample.add_argument("--n", type=_positive_int, default=SAMPLE_COUNT, help="number of samples")
    sample.add_argument("--seed", type=int, default=0, help="same seed, same samples")
    sample.add_argument("--out", type=Path, help="PNG file (default RUN_DIR/samples.png)")
    from keras_gon import experiments

    experiment = commands.add_parser(
        "experiment", help="the paper's comparisons: a Markdown table of held-out SSE and a plot"
    )
    experiments.add_arguments(experiment, _positive_int, _positive_float)
    cli_implicit.add_commands(commands)  # render, interpolate
    return parser


def _gon_options(args) -> dict:
    """Options of `GradientOriginModel` that every GON variant takes from the command line."""
    return dict(
        num_steps=args.num_steps,
        step_size=args.step_size,
        detach=args.detach,
        origin_stddev=args.origin_stddev,
        seed=args.seed,
    )


def _build_gon(args, image_shape):
    import keras_gon

    return keras_gon.GON(
        image_shape=image_shape,
        latent_dim=args.latent_dim,
        width=args.width,
        activation=args.activation,
        normalization=args.normalization,
        **_gon_options(args),
    )


VARIATIONAL_FLAGS = ("kl_weight", "likelihood", "likelihood_stddev", "kl_warmup_epochs")


def _variational_options(args) -> dict:
    """ELBO options of vgon/vae given on the command line (unset: the model's defaults)."""
    names = ("kl_weight", "likelihood", "likelihood_stddev")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _build_vgon(args, image_shape):
    import keras_gon

    return keras_gon.VariationalGON(
        image_shape=image_shape,
        latent_dim=args.latent_dim,
        width=args.width,
        activation=args.activation,
        normalization=args.normalization,
        **_gon_options(args),
        **_variational_options(args),
    )


def _build_vae(args, image_shape):
    import keras_gon

    origin_flags = dict(num_steps=1, step_size=1.0, detach=False, origin_stddev=0.0)
    given = [f"--{k.replace('_', '-')}" for k, v in origin_flags.items() if getattr(args, k) != v]
    if given:
        raise InputError(f"{', '.join(given)}: the vae has no origin gradient")
    return keras_gon.VAE(
        image_shape=image_shape,
        latent_dim=args.latent_dim,
        width=args.width,
        activation=args.activation,
        normalization=args.normalization,
        seed=args.seed,
        **_variational_options(args),
    )


# name -> (builder(args, image_shape) -> compiled-ready model, default image size)
def _build_baseline(model_class):
    """Builder of a baseline with the GON's decoder (no origin-gradient options)."""

    def build(args, image_shape):
        if args.num_steps != 1 or args.detach or args.origin_stddev:
            raise InputError("--num-steps, --detach and --origin-stddev are GON options")
        return model_class(
            image_shape=image_shape, latent_dim=args.latent_dim, width=args.width,
            activation=args.activation, normalization=args.normalization, seed=args.seed,
        )

    return build


def _build_ae(args, image_shape):
    import keras_gon

    return _build_baseline(keras_gon.ConvAutoencoder)(args, image_shape)


def _build_tied_ae(args, image_shape):
    import keras_gon

    return _build_baseline(keras_gon.TiedAutoencoder)(args, image_shape)


MODEL_BUILDERS = {"gon": (_build_gon, 32), "vgon": (_build_vgon, 32), "vae": (_build_vae, 32)}
MODEL_BUILDERS.update({"ae": (_build_ae, 32), "tied_ae": (_build_tied_ae, 32)})
MODEL_BUILDERS["igon"] = (cli_implicit.build_igon, cli_implicit.IGON_IMAGE_SIZE)  # native 28x28


def _atomic_write(path: Path, write) -> None:
    """Writes through a temporary file in the same folder, then renames over `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write_json(path: Path, payload: dict) -> None:
    def write(temporary):
        Path(temporary).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    _atomic_write(path, write)


def _test_images(test_ds, count: int):
    import numpy as np

    images = []
    for batch in test_ds:
        images.append(batch[0] if isinstance(batch, tuple) else batch)
        if sum(len(b) for b in images) >= count:
            break
    return np.concatenate([np.asarray(b) for b in images])[:count]


def _backup(args, model, info, out: Path):
    """The run's `AtomicBackupAndRestore` in `out/backup` (epoch runs), after the --resume checks."""
    from keras_gon.backup import AtomicBackupAndRestore

    if args.resume and args.out is None:
        raise InputError("--resume needs --out, the folder of the run to continue")
    if args.steps:
        if args.resume:
            raise InputError("--resume needs --epochs: a --steps run is one epoch, backed up at its end")
        return None
    config = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")}
    fingerprint = {
        "model": args.model, "config": config, "data": args.data, "image_shape": info.image_shape,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "mixed_precision": args.mixed_precision,
    }
    backup = AtomicBackupAndRestore(out / "backup", fingerprint=fingerprint)
    if backup.exists() and not args.resume:
        raise InputError(
            f"{out} holds an interrupted run: pass --resume to continue it, or another --out"
        )
    if args.resume and not backup.exists() and (out / "model.keras").exists():
        raise InputError(f"nothing to resume: the run in {out} has finished")
    if backup.exists():
        backup.check_fingerprint(backup.read_state())  # before training starts
    return backup


def train(args) -> dict:
    """`keras-gon train`: trains, then writes model.keras, metrics.json, reconstructions.png."""
    import keras
    import numpy as np

    import keras_gon
    from keras_gon.distribute import make_strategy, worker_dir
    from keras_gon.callbacks import KLWarmup, ReconstructionImages, StepTimer
    from keras_gon.data import load_dataset
    from keras_gon.plotting import save_image_rows, save_reconstructions

    keras.utils.set_random_seed(args.seed)
    strategy = make_strategy(args.strategy, tpu=args.tpu)  # before any other TF op (multiworker)
    builder, default_size = MODEL_BUILDERS[args.model]
    train_ds, test_ds, info = load_dataset(
        args.data,
        image_size=args.image_size or default_size,
        batch_size=args.batch_size,
        seed=args.seed,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
    )
    with strategy.scope():  # the model's variables are mirrored across the replicas
        model = builder(args, info.image_shape)
    given = [f"--{k.replace('_', '-')}" for k in VARIATIONAL_FLAGS if getattr(args, k) is not None]
    if given and not hasattr(model, "set_kl_weight"):
        raise InputError(f"{', '.join(given)}: only for variational models (vgon, vae)")
    # jit_compile None: the model's fastest choice (GradientOriginModel.compile), off
    # under a strategy; Keras turns it off under op determinism too (not every XLA
    # kernel is deterministic).
    with strategy.scope():
        model.compile(
            optimizer=keras.optimizers.Adam(args.lr, epsilon=1e-8),
            jit_compile=False if args.no_jit or args.deterministic else None,
        )
    out = args.out or Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = worker_dir(strategy, out)  # the chief writes `out`, other workers out/<task>-<index>
    out.mkdir(parents=True, exist_ok=True)
    backup = _backup(args, model, info, out)

    batches_per_epoch = info.num_train // args.batch_size
    timer = StepTimer()
    callbacks = [timer, keras.callbacks.TerminateOnNaN(), *([backup] if backup else [])]
    sample = _test_images(test_ds, RECONSTRUCTION_COUNT)
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
        callbacks.append(ReconstructionImages(sample, str(out / "logs" / "images")))
    if args.kl_warmup_epochs:
        callbacks.append(KLWarmup(args.kl_warmup_epochs * max(batches_per_epoch, 1)))
    if args.steps:
        history = model.fit(
            train_ds.repeat(),
            epochs=1,
            steps_per_epoch=args.steps,
            validation_data=test_ds,
            callbacks=callbacks,
            verbose=args.verbose,
        )
    else:
        history = model.fit(
            train_ds,
            epochs=args.epochs,
            validation_data=test_ds,
            callbacks=callbacks,
            verbose=args.verbose,
        )
    # (a run resumed after its last epoch trains no epoch: the backup has its loss)
    train_loss = float((history.history.get("loss") or [backup.restored_logs["loss"]])[-1])
    steps = backup.steps if backup else timer.steps
    if not np.isfinite(train_loss) or not all(np.all(np.isfinite(w)) for w in model.get_weights()):
        raise NonFiniteLossError(
            f"training stopped at step {timer.steps}: the loss became {train_loss} "
            f"(try a lower --lr); nothing was saved to {out}"
        )
    held_out = model.evaluate(test_ds, verbose=0, return_dict=True)
    test_loss = float(held_out["loss"])

    _atomic_write(out / "model.keras", model.save)
    save_reconstructions(out / "reconstructions.png", sample, model.reconstruct(sample).numpy())
    if hasattr(model, "sample"):  # models that can sample also write a sample grid
        save_image_rows(out / "samples.png", [("samples", np.asarray(model.sample(SAMPLE_COUNT, seed=args.seed)))])
    metrics = {
        "model": args.model,
        "data": args.data,
        "image_shape": list(info.image_shape),
        "num_train": info.num_train,
        "num_test": info.num_test,
        "steps": steps,
        "epochs": steps / max(batches_per_epoch, 1),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "jit_compile": bool(model.jit_compile),
        "strategy": args.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "mixed_precision": args.mixed_precision,
        "deterministic": args.deterministic,
        "resumed_from_epoch": backup.initial_epoch if backup else None,
        "train_loss": train_loss,
        "test_loss": test_loss,
        "seconds": timer.seconds,
        "steps_per_second": timer.steps_per_second,
        "parameters": int(sum(int(np.prod(v.shape)) for v in model.trainable_variables)),
        "config": model.get_config(),
        "versions": {
            "keras_gon": keras_gon.__version__,
            "keras": keras.__version__,
            "tensorflow": __import__("tensorflow").__version__,
        },
    }
    # vgon, vae: the -ELBO as bits/dim where the likelihood is a probability of the data,
    # else in nats (keras_gon.losses.elbo_metric_names)
    for name in ("bits_per_dim", "negative_elbo_nats"):
        if name in held_out:
            metrics[f"test_{name}"] = float(held_out[name])
            if history.history.get(name):  # (none when a resumed run trained no epoch)
                metrics[f"train_{name}"] = float(history.history[name][-1])
    _write_json(out / "metrics.json", metrics)
    if backup:  # the results are written: the backup is no longer needed
        backup.delete()
    print(
        f"trained {args.model} for {timer.steps} steps ({timer.steps_per_second:.1f} steps/s): "
        f"train loss {train_loss:.2f}, held-out loss {test_loss:.2f}; wrote {out}"
    )
    return metrics


def _load_run(run_dir: Path):
    import keras

    import keras_gon  # noqa: F401  (registers the serialisable classes)

    path = run_dir / "model.keras"
    if not run_dir.is_dir():
        raise InputError(f"no such run folder: {run_dir}")
    if not path.is_file():
        raise InputError(f"no model.keras in {run_dir}: is it a folder written by `keras-gon train`?")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # a truncated or foreign file: name it, not a traceback
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot load {path}: {first}") from None


def evaluate(args) -> dict:
    """`keras-gon evaluate`: held-out loss of a run's model, stored in its metrics.json."""
    from keras_gon.data import load_dataset

    model = _load_run(args.run_dir)
    metrics_path = args.run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    data = args.data or metrics.get("data")
    if not data:
        raise InputError(f"no --data given and {metrics_path} does not name the training data")
    height, _, channels = model.input_spec_shape
    _, test_ds, info = load_dataset(
        data,
        image_size=height,
        channels=channels,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
    )
    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    evaluation = {"data": data, "num_test": info.num_test, "test_loss": float(results["loss"])}
    evaluation.update({k: float(v) for k, v in results.items() if k != "loss"})
    metrics.setdefault("evaluations", []).append(evaluation)
    _write_json(metrics_path, metrics)
    print(f"held-out loss on {data} ({info.num_test} images): {evaluation['test_loss']:.4f}")
    return evaluation


def export(args) -> Path:
    """`keras-gon export`: writes `--to/<version>/`, version 1 or the next free number."""
    from keras_gon.export import export_saved_model, next_version_dir

    model = _load_run(args.run_dir)
    target = next_version_dir(args.to)
    target.parent.mkdir(parents=True, exist_ok=True)
    export_saved_model(model, target)
    print(f"exported {args.run_dir} to {target}")
    return target


def sample(args) -> Path:
    """`keras-gon sample`: a PNG grid of `--n` images decoded from z ~ N(0, I)."""
    import numpy as np

    from keras_gon.plotting import save_image_rows

    model = _load_run(args.run_dir)
    if not hasattr(model, "sample"):
        raise InputError(f"{type(model).__name__} cannot sample (vgon and vae can)")
    out = args.out or args.run_dir / "samples.png"
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must name a .png file, got {out}")
    if not out.parent.is_dir():
        raise InputError(f"no such folder for --out: {out.parent}")
    images = np.asarray(model.sample(args.n, seed=args.seed))
    _atomic_write(out, lambda path: save_image_rows(path, [("samples", images)]))
    print(f"wrote {args.n} samples (seed {args.seed}) to {out}")
    return out


def experiment(args) -> dict:
    """`keras-gon experiment NAME`: see `keras_gon.experiments`."""
    from keras_gon import experiments

    return experiments.main(args)


def _run_settings(args):
    """`train`'s seed, op determinism and dtype policy, restored when the command returns."""
    if args.command != "train":
        return contextlib.nullcontext()
    from keras_gon.runtime import run_settings

    return run_settings(args.seed, args.deterministic, args.mixed_precision)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `keras-gon` and `python -m keras_gon`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": train, "evaluate": evaluate, "export": export, "sample": sample}.get(
        args.command, experiment
    )
    command = {"render": cli_implicit.render, "interpolate": cli_implicit.interpolate}.get(
        args.command, command
    )
    try:
        with _run_settings(args):
            command(args)
    except (InputError, NonFiniteLossError) as error:
        print(f"keras-gon: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

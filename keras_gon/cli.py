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
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def build_parser() -> argparse.ArgumentParser:
    from keras_gon.layers.conv_decoder import NORMALIZATIONS

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
    train.add_argument("--out", type=Path, help="run folder (default runs/<model>-<time>)")
    train.add_argument("--no-jit", action="store_true", help="turn XLA compilation off")
    train.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)

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


# name -> (builder(args, image_shape) -> compiled-ready model, default image size)
MODEL_BUILDERS = {"gon": (_build_gon, 32)}


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


def train(args) -> dict:
    """`keras-gon train`: trains, then writes model.keras, metrics.json, reconstructions.png."""
    import keras
    import numpy as np

    import keras_gon
    from keras_gon.callbacks import ReconstructionImages, StepTimer
    from keras_gon.data import load_dataset
    from keras_gon.plotting import save_image_rows, save_reconstructions

    keras.utils.set_random_seed(args.seed)
    builder, default_size = MODEL_BUILDERS[args.model]
    train_ds, test_ds, info = load_dataset(
        args.data,
        image_size=args.image_size or default_size,
        batch_size=args.batch_size,
        seed=args.seed,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
    )
    model = builder(args, info.image_shape)
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr, epsilon=1e-8), jit_compile=not args.no_jit
    )
    out = args.out or Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)

    batches_per_epoch = info.num_train // args.batch_size
    timer = StepTimer()
    callbacks = [timer, keras.callbacks.TerminateOnNaN()]
    sample = _test_images(test_ds, RECONSTRUCTION_COUNT)
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
        callbacks.append(ReconstructionImages(sample, str(out / "logs" / "images")))
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
    train_loss = float(history.history["loss"][-1])
    if not np.isfinite(train_loss) or not np.all(np.isfinite(model.get_weights()[0])):
        raise NonFiniteLossError(
            f"training stopped at step {timer.steps}: the loss became {train_loss} "
            f"(try a lower --lr); nothing was saved to {out}"
        )
    test_loss = float(model.evaluate(test_ds, verbose=0, return_dict=True)["loss"])

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
        "steps": timer.steps,
        "epochs": timer.steps / max(batches_per_epoch, 1),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "jit_compile": not args.no_jit,
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
    _write_json(out / "metrics.json", metrics)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `keras-gon` and `python -m keras_gon`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": train, "evaluate": evaluate, "export": export}[args.command]
    try:
        command(args)
    except (InputError, NonFiniteLossError) as error:
        print(f"keras-gon: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

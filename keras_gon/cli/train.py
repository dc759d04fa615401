"""`keras-gon train KIND`: train any registered model kind and write a run folder.

    keras-gon train gon                                   # offline mnist5k, 32x32
    keras-gon train gon --data mnist --epochs 5 --out runs/gon-mnist   # TFDS
    keras-gon train glo --data ../shared/data/mnist10k.npz --steps 300 --out /tmp/glo

A run folder holds `model.keras`, `metrics.json` and `reconstructions.png`
(and `samples.png` for models that sample), each written whole or not at all.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from keras_gon.cli.common import (
    HelpFormatter,
    NonFiniteLossError,
    add_data_arguments,
    first_images,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
)
from keras_gon.errors import InputError
from keras_gon.registry import MODEL_KINDS

RECONSTRUCTION_COUNT = 16
SAMPLE_COUNT = 64

# Command-line flags of the model options: (flag, option name, argparse keywords, group).
MODEL_FLAGS = (
    (("--latent-dim", "--nz"), "latent_dim", dict(type=positive_int, default=32,
                                                  help="latent size"), None),
    (("--width", "--ngf"), "width", dict(type=positive_int, help="decoder width (default 16)"),
     "decoder"),
    (("--activation",), "activation", dict(help="hidden activation (default elu)"), "decoder"),
    (("--normalization",), "normalization",
     dict(help="decoder normalisation: layer (default), batch (the paper's), group, none, ..."),
     "decoder"),
    (("--latent-map-size",), "latent_map_size",
     dict(type=positive_int, help="side k of a spatial k x k x (latent_dim/k²) latent map "
          "(fig. 10a); 1: a vector (default)"), "decoder"),
    (("--encoder",), "encoder",
     dict(choices=("conv", "linear"), help="ae/vae encoder: conv (default, the paper's "
          "baselines) or linear (one affine map, the class of a GON's encoder)"), "encoder"),
    (("--num-steps",), "num_steps", dict(type=positive_int, help="inner gradient steps (1)"),
     "origin"),
    (("--step-size",), "step_size", dict(type=positive_float, help="inner step size (1)"),
     "origin"),
    (("--detach",), "detach", dict(action="store_const", const=True,
                                    help="stop gradients through z"), "origin"),
    (("--origin-stddev",), "origin_stddev",
     dict(type=non_negative_float, help="z0 ~ N(0, σ²) in training (0)"), "origin"),
    (("--inner-batch-reduction",), "inner_batch_reduction",
     dict(choices=("sum", "mean"), help="sum: batch-independent latents (default); mean: the "
          "authors'"), "origin"),
    (("--kl-weight", "--beta"), "kl_weight", dict(type=non_negative_float,
                                                  help="β, the KL weight (1)"), "variational"),
    (("--likelihood",), "likelihood",
     dict(choices=("discretized_logistic", "bernoulli", "bce", "gaussian"),
          help="p(x|z): discretized_logistic (default; 8-bit grey levels, real bits/dim), "
          "bernoulli (binarised images), bce (the authors' cross-entropy on grey levels, nats), "
          "gaussian (nats)"), "variational"),
    (("--likelihood-stddev",), "likelihood_stddev",
     dict(type=positive_float, help="gaussian p(x|z) standard deviation (0.1)"), "variational"),
    (("--hidden-units",), "hidden_units", dict(type=positive_int, help="units per sine layer (256)"),
     "implicit"),
    (("--num-layers",), "num_layers", dict(type=positive_int, help="number of sine layers (4)"),
     "implicit"),
    (("--w0",), "w0", dict(type=positive_float, help="SIREN frequency factor (30)"), "implicit"),
    (("--coordinate-fraction",), "coordinate_fraction",
     dict(type=fraction, help="fraction of the pixel coordinates per step (1)"), "implicit"),
    (("--latent-learning-rate",), "latent_learning_rate",
     dict(type=positive_float, help="SGD step of the training latents (1)"), "glo"),
    (("--inference-steps",), "inference_steps",
     dict(type=positive_int, help="Adam steps fitting a held-out latent (50)"), "glo"),
    (("--num-classes",), "num_classes", dict(type=positive_int, help="classes (10)"),
     "classifier"),
    (("--reconstruction-weight",), "reconstruction_weight",
     dict(type=non_negative_float, help="weight of the SSE term (0)"), "classifier"),
)
GROUP_MESSAGES = {
    "decoder": "only for models with the convolutional decoder",
    "origin": "the {kind} has no origin gradient (GON options)",
    "encoder": "only for the autoencoder baselines with an encoder (ae, vae)",
    "variational": "only for variational models (vgon, vae)",
    "implicit": "only for the implicit GON (igon)",
    "glo": "only for glo",
    "classifier": "only for the classifier",
}


class _RawDescription(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, the description's list of kinds kept as written."""


def add_parser(commands) -> None:
    """Registers `keras-gon train`."""
    kinds = "\n".join(f"  {k.name:<11} {k.description}" for k in MODEL_KINDS.values())
    train = commands.add_parser(
        "train", help="train a model and write a run folder", formatter_class=_RawDescription,
        description=f"Train a model of one of these kinds and write a run folder:\n{kinds}",
    )
    train.add_argument("model", choices=tuple(MODEL_KINDS), help="the model kind (listed above)")
    add_data_arguments(train, default="mnist5k")
    train.add_argument("--epochs", type=positive_int, default=10, help="training epochs")
    train.add_argument("--steps", type=positive_int, help="train this many steps instead of epochs")
    train.add_argument("--batch-size", type=positive_int, default=64, help="global batch size")
    train.add_argument("--image-size", type=positive_int,
                       help="image size (default: the kind's, 32; 28 for igon)")
    train.add_argument("--train-images", type=positive_int, metavar="N",
                       help="train on a fixed random subset of N training images (seed 0)")
    train.add_argument("--channels", type=int, choices=(1, 3),
                       help="image folders: 1 (grey) or 3 (colour) (default: colour if any "
                       "image has it)")
    train.add_argument("--lr", type=positive_float, default=1e-4, help="Adam learning rate")
    train.add_argument("--seed", type=int, default=0, help="seed of data order and weights")
    train.add_argument("--out", type=Path, help="run folder (default runs/<model>-<time>)")
    train.add_argument("--from-preset", metavar="PRESET",
                       help="fine-tune a pretrained preset (a name from `keras-gon presets`, a "
                       "preset folder or a .keras file) instead of a new model")
    for flags, _, keywords, _ in MODEL_FLAGS:
        train.add_argument(*flags, **keywords)
    train.add_argument("--kl-warmup-epochs", type=positive_int,
                       help="vgon/vae: raise β from 0 over this many epochs")
    train.add_argument("--no-jit", action="store_true", help="turn XLA compilation off")
    train.add_argument("--strategy", choices=("default", "mirrored", "multiworker", "tpu"),
                       default="default",
                       help="tf.distribute strategy: mirrored (local GPUs), multiworker "
                       "(TF_CONFIG), tpu")
    train.add_argument("--tpu", help="--strategy tpu: TPU name or grpc:// address")
    train.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"),
                       help="Keras mixed-precision dtype policy")
    train.add_argument("--deterministic", action="store_true",
                       help="deterministic ops: the same --seed gives bit-identical losses")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last finished epoch")
    train.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="Keras's progress output")
    train.set_defaults(func=train_command, settings=True)


def model_options(args, image_shape, num_train: int) -> dict:
    """The constructor options of `args.model` from the command line; flags of option
    groups the kind does not take are refused by name."""
    kind = MODEL_KINDS[args.model]
    options = {"seed": args.seed}
    taken = set(kind.options)
    refused = {}
    for flags, name, _, group in MODEL_FLAGS:
        value = getattr(args, name)
        if name == "latent_dim":
            options[name] = value
        elif value is not None and name in taken:
            options[name] = value
        elif value is not None:
            refused.setdefault(group, []).append(flags[0])
    if args.kl_warmup_epochs is not None and "variational" not in kind.option_groups:
        refused.setdefault("variational", []).append("--kl-warmup-epochs")
    for group, flags in refused.items():
        raise InputError(f"{', '.join(flags)}: " + GROUP_MESSAGES[group].format(kind=kind.name))
    options["image_shape"] = image_shape
    if "num_examples" in taken:
        options["num_examples"] = num_train
    return options


def _load_data(args, kind, strategy_batch: int):
    from keras_gon.data import load_dataset, with_example_indices

    size = args.image_size or kind.image_size
    train_ds, test_ds, info = load_dataset(
        args.data, image_size=size, batch_size=strategy_batch, seed=args.seed,
        data_dir=args.data_dir, manual_dir=args.manual_dir, channels=args.channels,
        train_images=args.train_images,
        with_labels=kind.data == "labelled", shuffle_train=kind.data != "indexed",
    )
    if info.summary:
        print(info.summary)
    if kind.data == "indexed":
        train_ds = with_example_indices(train_ds, strategy_batch, seed=args.seed)
    return train_ds, test_ds, info


def _preset_model(args, kind, strategy):
    """The preset to fine-tune, of the kind asked for; model flags other than its own refused."""
    from keras_gon.presets import load_preset
    from keras_gon.registry import kind_of

    given = [flags[0] for flags, name, _, _ in MODEL_FLAGS
             if name != "latent_dim" and getattr(args, name) is not None]
    if given:
        raise InputError(f"{', '.join(given)}: the preset fixes the model's options")
    with strategy.scope():
        model = load_preset(args.from_preset)
    if kind_of(model).name != kind.name:
        raise InputError(f"--from-preset {args.from_preset} holds a {kind_of(model).name} "
                         f"model: train it with `keras-gon train {kind_of(model).name}`")
    return model


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


def _held_out_figures(history, validated: bool) -> dict | None:
    """The held-out figures of fit's validation after its last epoch (the final weights, the
    whole test set: what `evaluate` would give again), or None if fit did not validate."""
    figures = {key[len("val_"):]: values[-1] for key, values in history.history.items()
               if key.startswith("val_") and values}
    if not validated or "loss" not in figures or not history.epoch:
        return None
    return figures


def train_command(args) -> dict:
    """`keras-gon train`: trains, then writes model.keras, metrics.json and the PNGs."""
    import keras
    import numpy as np

    import keras_gon
    from keras_gon.callbacks import KLWarmup, ReconstructionImages, StepTimer
    from keras_gon.distribute import make_strategy, worker_dir
    from keras_gon.files import atomic_write, write_json
    from keras_gon.plotting import save_image_rows, save_reconstructions

    kind = MODEL_KINDS[args.model]
    keras.utils.set_random_seed(args.seed)
    strategy = make_strategy(args.strategy, tpu=args.tpu)  # before any other TF op (multiworker)
    preset = _preset_model(args, kind, strategy) if args.from_preset else None
    if preset is not None and args.image_size is None:
        args.image_size = preset.image_shape[0]
    if preset is not None and args.channels is None:
        args.channels = preset.image_shape[-1]
    train_ds, test_ds, info = _load_data(args, kind, args.batch_size)
    options = model_options(args, info.image_shape, info.num_train)
    with strategy.scope():  # the model's variables are mirrored across the replicas
        model = preset if preset is not None else kind.build(**options)
        # jit_compile None: the model's fastest choice, off under a strategy; Keras turns
        # it off under op determinism too (not every XLA kernel is deterministic).
        model.compile(
            optimizer=keras.optimizers.Adam(args.lr, epsilon=1e-8),
            jit_compile=False if args.no_jit or args.deterministic else None,
        )
    out = args.out or Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    out = worker_dir(strategy, out)  # the chief writes `out`, other workers out/<task>-<index>
    out.mkdir(parents=True, exist_ok=True)
    backup = _backup(args, model, info, out)

    batches_per_epoch = info.num_train // args.batch_size
    timer = StepTimer()
    callbacks = [timer, keras.callbacks.TerminateOnNaN(), *([backup] if backup else [])]
    sample = first_images(test_ds, RECONSTRUCTION_COUNT)
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
        callbacks.append(ReconstructionImages(sample, str(out / "logs" / "images")))
    if args.kl_warmup_epochs:
        callbacks.append(KLWarmup(args.kl_warmup_epochs * max(batches_per_epoch, 1)))
    validation = None if kind.data == "indexed" else test_ds  # GLO fits held-out latents
    fit = dict(validation_data=validation, callbacks=callbacks, verbose=args.verbose)
    if args.steps:
        history = model.fit(train_ds.repeat(), epochs=1, steps_per_epoch=args.steps, **fit)
    else:
        history = model.fit(train_ds, epochs=args.epochs, **fit)
    # (a run resumed after its last epoch trains no epoch: the backup has its loss)
    train_loss = float((history.history.get("loss") or [backup.restored_logs["loss"]])[-1])
    steps = backup.steps if backup else timer.steps
    if not np.isfinite(train_loss) or not all(np.all(np.isfinite(w)) for w in model.get_weights()):
        raise NonFiniteLossError(
            f"training stopped at step {timer.steps}: the loss became {train_loss} "
            f"(try a lower --lr); nothing was saved to {out}"
        )
    held_out = _held_out_figures(history, validation is not None)
    if held_out is None:
        held_out = model.evaluate(test_ds, verbose=0, return_dict=True)

    atomic_write(out / "model.keras", model.save)
    atomic_write(out / "reconstructions.png", lambda path: save_reconstructions(
        path, sample, np.asarray(model.reconstruct_batch(sample))))  # eager: no trace for 16 images
    if hasattr(model, "sample"):  # models that can sample also write a sample grid
        images = np.asarray(model.sample(SAMPLE_COUNT, seed=args.seed))
        atomic_write(out / "samples.png", lambda path: save_image_rows(path, [("samples", images)]))
    metrics = {
        "model": args.model,
        "data": args.data,
        "image_shape": list(info.image_shape),
        "num_train": info.num_train,
        "num_test": info.num_test,
        "split": info.split,
        "class_names": list(info.class_names),
        "skipped_files": list(info.skipped),
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
        "test_loss": float(held_out["loss"]),
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
    # else in nats (keras_gon.losses.elbo_metric_names); the classifier's accuracy
    for name in ("bits_per_dim", "negative_elbo_nats", "accuracy"):
        if name in held_out:
            metrics[f"test_{name}"] = float(held_out[name])
            if history.history.get(name):  # (none when a resumed run trained no epoch)
                metrics[f"train_{name}"] = float(history.history[name][-1])
    write_json(out / "metrics.json", metrics)
    if backup:  # the results are written: the backup is no longer needed
        backup.delete()
    print(
        f"trained {args.model} for {timer.steps} steps ({timer.steps_per_second:.1f} steps/s): "
        f"train loss {train_loss:.2f}, held-out loss {metrics['test_loss']:.2f}; wrote {out}"
    )
    return metrics


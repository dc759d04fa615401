"""`keras-gon evaluate` and `keras-gon export`: commands on a trained run folder."""

from __future__ import annotations

from pathlib import Path

from keras_gon.cli.common import (
    add_data_arguments,
    add_run_command,
    held_out_split,
    is_preset,
    load_run,
    positive_int,
    run_metrics,
)
from keras_gon.errors import InputError
from keras_gon.validation import count_noun


def add_parsers(commands) -> None:
    """Registers `keras-gon evaluate` and `keras-gon export`."""
    run_help = "a run folder or a preset name"
    evaluate = add_run_command(commands, "evaluate", "held-out loss of a trained run", run_help)
    add_data_arguments(evaluate)
    evaluate.add_argument("--batch-size", type=positive_int, default=256)
    evaluate.add_argument(
        "--bn-statistics",
        choices=("moving", "batch"),
        default="moving",
        help="how batch norms are evaluated: moving statistics (Keras's "
        "inference) or each batch's own, as the authors' code does",
    )
    evaluate.set_defaults(func=evaluate_command)
    export = add_run_command(
        commands,
        "export",
        "export a run's model as a versioned SavedModel for TF-Serving",
        run_help,
    )
    export.add_argument(
        "--to",
        type=Path,
        required=True,
        help="model base path, e.g. saved_models/NAME; writes NAME/<next version>/",
    )
    export.add_argument(
        "--image-dtype",
        choices=("float32", "uint8"),
        default="float32",
        help="what the image signatures take: float32 in [0, 1], or uint8 grey levels 0-255",
    )
    export.set_defaults(func=export_command)


HEADLINE_FIGURES = (
    ("accuracy", "accuracy"),
    ("bits_per_dim", "bits/dim"),
    ("negative_elbo_nats", "negative ELBO (nats per image)"),
)
"""The figure `evaluate` prints beside the loss, when the model reports it: the one the
presets table gives for its kind (the classifier's accuracy, the variational models'
bits/dim, or nats for likelihoods that are not a probability of 8-bit data)."""


def evaluate_command(args) -> dict:
    """`keras-gon evaluate`: held-out loss of a run's model, stored in its metrics.json."""
    from keras_gon.files import write_json
    from keras_gon.layers.batch_normalization import inference_statistics
    from keras_gon.registry import kind_of
    from keras_gon.resources import check_memory, decoding_bytes

    model = load_run(args.run_dir)
    metrics = run_metrics(args.run_dir)
    data, test_ds, info = held_out_split(
        args,
        model,
        args.batch_size,
        run_data=metrics.get("data"),
        with_labels=kind_of(model).data == "labelled",
    )
    if info.summary:  # (an image folder: what was found, skipped or converted)
        print(info.summary)
    batch = min(args.batch_size, info.num_test) if info.num_test > 0 else args.batch_size
    # a batch's forward pass and the origin gradient's backward pass, from the shapes
    check_memory(
        3 * decoding_bytes(model, batch),
        f"--batch-size {args.batch_size}: evaluating the held-out images of {data} "
        f"in batches of {batch:,}",
        ": give a smaller --batch-size",
    )
    print(
        f"evaluating {args.run_dir} on the {info.num_test:,} held-out images of {data}...",
        flush=True,
    )
    with inference_statistics(model, args.bn_statistics):
        results = model.evaluate(test_ds, verbose=0, return_dict=True)
    evaluation = {
        "data": data,
        "num_test": info.num_test,
        "test_loss": float(results["loss"]),
        "bn_statistics": args.bn_statistics,
    }
    evaluation.update({k: float(v) for k, v in results.items() if k != "loss"})
    if not is_preset(args.run_dir):  # (a preset's files belong to the installation)
        metrics.setdefault("evaluations", []).append(evaluation)
        write_json(args.run_dir / "metrics.json", metrics)
    figures = "".join(
        f", {label} {evaluation[name]:.4f}"
        for name, label in HEADLINE_FIGURES
        if name in evaluation
    )
    print(
        f"held-out loss on {data} ({count_noun(info.num_test, 'image')}): "
        f"{evaluation['test_loss']:.4f}{figures}"
    )
    return evaluation


def export_command(args) -> Path:
    """`keras-gon export`: writes `--to/<version>/`, version 1 or the next free number."""
    from keras_gon.export import export_version

    if args.to.exists() and not args.to.is_dir():
        raise InputError(f"--to {args.to} is a file, not a folder of versions")
    existing = next((p for p in args.to.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"--to {args.to}: {existing} is a file, not a folder")
    model = load_run(args.run_dir)
    print(
        f"exporting {args.run_dir} to {args.to}/<next version> ({args.image_dtype} images)...",
        flush=True,
    )
    target = export_version(model, args.to, image_dtype=args.image_dtype)
    print(f"exported {args.run_dir} to {target}")
    return target

"""`keras-gon presets`: list the pretrained presets, or build them again."""

from __future__ import annotations

from pathlib import Path

from keras_gon.cli.common import HelpFormatter
from keras_gon.errors import InputError


def add_parser(commands) -> None:
    """Registers `keras-gon presets [list|build]`."""
    presets = commands.add_parser(
        "presets", help="list the pretrained presets (or build them)", formatter_class=HelpFormatter
    )
    presets.add_argument("action", nargs="?", choices=("list", "build"), default="list")
    presets.add_argument(
        "--data",
        nargs="+",
        metavar="NAME=PATH",
        help="build: the data of each preset, by name: mnist (mnist22k.npz), "
        "fashion_mnist (its IDX folder), cifar10 (a folder with train/ and "
        "test/), celeba (a flat folder of faces)",
    )
    presets.add_argument(
        "--names",
        nargs="+",
        help="build: only these presets (default: every preset whose data is given)",
    )
    presets.add_argument(
        "--out", type=Path, help="build: where to write them (default: the package's preset folder)"
    )
    presets.add_argument(
        "--work",
        type=Path,
        help="build: where training keeps its backups "
        "(default runs/preset-build; a killed build continues from there)",
    )
    presets.add_argument(
        "--pictures", type=Path, help="build: write each preset's picture (PNG) into this folder"
    )
    presets.add_argument(
        "--rebuild", action="store_true", help="build: train presets that are already built again"
    )
    presets.set_defaults(func=presets_command)


def presets_command(args) -> list:
    """Lists the presets with their held-out figures, or trains them (`build`)."""
    from keras_gon.presets import list_presets

    if args.action == "build":
        from keras_gon.preset_builder import build_presets, parse_data

        if not args.data:
            raise InputError("presets build needs --data NAME=PATH for the presets' data")
        return build_presets(
            parse_data(args.data),
            names=args.names,
            out=args.out,
            work=args.work,
            pictures=args.pictures,
            rebuild=args.rebuild,
        )
    if args.data or args.names or args.out or args.work or args.pictures or args.rebuild:
        raise InputError(
            "--data, --names, --out, --work, --pictures and --rebuild are for "
            "`keras-gon presets build`"
        )
    rows = list_presets()
    if not rows:
        print("no presets are built in this installation (keras-gon presets build)")
    for row in rows:
        versus = ""
        if row.get("baseline_kind"):
            versus = (
                f" ({row['baseline_kind'].upper()} with the same decoder and budget: "
                f"{row['baseline_value']:.4f})"
            )
        print(
            f"{row['name']:<22} {row['kind']:<11} held-out {row['held_out_meaning']} "
            f"{row['held_out_value']:.4f}{versus} on {row['data']}; "
            f"{row['parameters']:,} parameters"
        )
        print(f"{'':<22} {row['description']}")
    return rows

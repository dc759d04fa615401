"""`keras-gon presets`: list the pretrained presets, or build them again."""

from __future__ import annotations

from pathlib import Path

from keras_gon.cli.common import HelpFormatter


def add_parser(commands) -> None:
    """Registers `keras-gon presets [list|build]`."""
    presets = commands.add_parser("presets", help="list the pretrained presets (or build them)",
                                  formatter_class=HelpFormatter)
    presets.add_argument("action", nargs="?", choices=("list", "build"), default="list")
    presets.add_argument("--data", default="../shared/data/mnist22k.npz",
                         help="build: the data the presets are trained and evaluated on")
    presets.add_argument("--names", nargs="+", help="build: only these presets")
    presets.add_argument("--out", type=Path, help="build: where to write them "
                         "(default: the package's preset folder)")
    presets.set_defaults(func=presets_command)


def presets_command(args) -> list:
    """Lists the presets with their held-out figures, or trains them (`build`)."""
    from keras_gon.presets import build_presets, list_presets

    if args.action == "build":
        return build_presets(args.data, names=args.names, out=args.out)
    rows = list_presets()
    if not rows:
        print("no presets are built in this installation (keras-gon presets build)")
    for row in rows:
        print(f"{row['name']:<22} {row['kind']:<11} held-out {row['held_out_meaning']} "
              f"{row['held_out_value']:.4f} on {row['data']}; {row['parameters']:,} parameters")
        print(f"{'':<22} {row['description']}")
    return rows

"""`keras-gon experiment NAME`: the paper's comparisons (see `keras_gon.experiments`)."""

from __future__ import annotations

from keras_gon.cli.common import HelpFormatter, positive_float, positive_int, seed


def add_parser(commands) -> None:
    """Registers `keras-gon experiment`."""
    from keras_gon.experiments.arguments import add_arguments

    experiment = commands.add_parser(
        "experiment",
        formatter_class=HelpFormatter,
        help="the paper's comparisons: tables of held-out figures, plots, verdicts",
    )
    add_arguments(experiment, positive_int, positive_float, seed)
    experiment.set_defaults(func=experiment_command)


def experiment_command(args) -> dict:
    """Runs the experiment named by `args.name`."""
    from keras_gon.experiments import main

    return main(args)

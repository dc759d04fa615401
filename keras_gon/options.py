"""The model options of keras-gon, listed once.

Each `Option` names a constructor argument, the option groups it belongs to (a kind takes
the groups of `keras_gon.registry.ModelKind.option_groups`), and how the command line
takes it (flags, type, help). The registry's groups, the CLI's model flags and the
decoder options a model takes flat are all read from `OPTIONS`. Importing this module
imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses

LIKELIHOODS = ("discretized_logistic", "bernoulli", "bce", "gaussian")
"""The decoder likelihoods p(x|z) of the variational models (`keras_gon.losses`)."""

PRIORS = ("standard", "fitted")
"""What the variational models sample z from: N(0, I), or a normal fitted to the aggregate
posterior of the training images (`keras_gon.models.VariationalMixin`)."""

ENCODERS = ("conv", "linear")
"""The encoders of the AE and VAE baselines (`keras_gon.models.ConvDecoderModel`)."""

NORMALIZATIONS = (
    "batch",
    "batch_outer",
    "batch_frozen_origin",
    "group",
    "layer",
    "none",
    "keras_batch",
)
"""The decoder's normalisations (`keras_gon.layers.ConvDecoder`)."""

VALUE_TYPES = (
    "positive_int",
    "positive_float",
    "non_negative_float",
    "fraction",
    "flag",
    "choice",
    "text",
    "none",
)
"""How the command line reads an option's value ("none": not a command-line option)."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One constructor option.

    Attributes:
        name: the constructor argument.
        groups: the option groups that have it.
        flags: its command-line flags, the first canonical (empty: not on the command line).
        value: one of `VALUE_TYPES`.
        choices: the accepted values of a "choice".
        help: the command line's help, with the default.
    """

    name: str
    groups: tuple[str, ...]
    flags: tuple[str, ...] = ()
    value: str = "none"
    choices: tuple = ()
    help: str = ""


OPTIONS = (
    Option("seed", ("model",)),
    Option("outer_loss", ("model",)),
    Option("outer_target", ("model",)),
    Option("name", ("model",)),
    Option("dtype", ("model",)),
    Option("image_shape", ("decoder", "implicit")),
    Option(
        "latent_dim",
        ("decoder", "implicit"),
        ("--latent-dim", "--nz"),
        "positive_int",
        help="latent size (32)",
    ),
    Option("width", ("decoder",), ("--width", "--ngf"), "positive_int", help="decoder width (16)"),
    Option("activation", ("decoder",), ("--activation",), "text", help="hidden activation (elu)"),
    Option(
        "normalization",
        ("decoder",),
        ("--normalization",),
        "choice",
        NORMALIZATIONS,
        help="decoder normalisation: layer (default), batch (the paper's), group, none, ...",
    ),
    Option("momentum", ("decoder",)),
    Option("epsilon", ("decoder",)),
    Option(
        "latent_map_size",
        ("decoder",),
        ("--latent-map-size",),
        "positive_int",
        help="side k of a spatial k x k x (latent_dim/k²) latent map (fig. 10a); 1: a "
        "vector (default)",
    ),
    Option("inner_loss", ("origin",)),
    Option(
        "num_steps", ("origin",), ("--num-steps",), "positive_int", help="inner gradient steps (1)"
    ),
    Option(
        "step_size", ("origin",), ("--step-size",), "positive_float", help="inner step size (1)"
    ),
    Option("detach", ("origin",), ("--detach",), "flag", help="stop gradients through z"),
    Option(
        "origin_stddev",
        ("origin",),
        ("--origin-stddev",),
        "non_negative_float",
        help="z0 ~ N(0, σ²) in training (0)",
    ),
    Option("add_origin", ("origin",)),
    Option(
        "inner_batch_reduction",
        ("origin",),
        ("--inner-batch-reduction",),
        "choice",
        ("sum", "mean"),
        help="sum: batch-independent latents (default); mean: the authors'",
    ),
    Option("share_origin", ("origin",)),
    Option(
        "encoder",
        ("encoder",),
        ("--encoder",),
        "choice",
        ENCODERS,
        help="ae/vae encoder: conv (default, the paper's baselines) or linear (one affine "
        "map, the class of a GON's encoder)",
    ),
    Option(
        "likelihood",
        ("variational",),
        ("--likelihood",),
        "choice",
        LIKELIHOODS,
        help="p(x|z): discretized_logistic (default; 8-bit grey levels, real bits/dim), "
        "bernoulli (binarised images), bce (the authors' cross-entropy on grey levels, "
        "nats), gaussian (nats)",
    ),
    Option(
        "likelihood_stddev",
        ("variational",),
        ("--likelihood-stddev",),
        "positive_float",
        help="gaussian p(x|z) standard deviation (0.1)",
    ),
    Option(
        "kl_weight",
        ("variational",),
        ("--kl-weight", "--beta"),
        "non_negative_float",
        help="β, the KL weight (1)",
    ),
    Option(
        "prior",
        ("variational",),
        ("--prior",),
        "choice",
        PRIORS,
        help="what vgon/vae samples z from: standard (default, N(0, I) as the paper) or "
        "fitted (a normal fitted to the training images' aggregate posterior after fit)",
    ),
    Option(
        "hidden_units",
        ("implicit",),
        ("--hidden-units",),
        "positive_int",
        help="units per sine layer (256; keras-gon train: 64, as igon_mnist)",
    ),
    Option(
        "num_layers",
        ("implicit",),
        ("--num-layers",),
        "positive_int",
        help="number of sine layers (4)",
    ),
    Option("w0", ("implicit",), ("--w0",), "positive_float", help="SIREN frequency factor (30)"),
    Option(
        "coordinate_fraction",
        ("implicit",),
        ("--coordinate-fraction",),
        "fraction",
        help="fraction of the pixel coordinates per step (1)",
    ),
    Option("num_examples", ("glo",)),
    Option(
        "latent_learning_rate",
        ("glo",),
        ("--latent-learning-rate",),
        "positive_float",
        help="SGD step of the training latents (1)",
    ),
    Option(
        "inference_steps",
        ("glo",),
        ("--inference-steps",),
        "positive_int",
        help="Adam steps fitting a held-out latent (50)",
    ),
    Option("inference_learning_rate", ("glo",)),
    Option(
        "num_classes",
        ("classifier",),
        ("--num-classes",),
        "positive_int",
        help="classes (default: a folder's class subfolders, else 10)",
    ),
    Option(
        "reconstruction_weight",
        ("classifier",),
        ("--reconstruction-weight",),
        "non_negative_float",
        help="weight of the SSE term (0)",
    ),
)
"""Every model option, once."""

OPTION_GROUPS = {
    group: tuple(option.name for option in OPTIONS if group in option.groups)
    for group in dict.fromkeys(g for option in OPTIONS for g in option.groups)
}
"""Constructor options by group: a kind takes "model"'s and those of its option groups."""

DECODER_OPTIONS = tuple(name for name in OPTION_GROUPS["decoder"])
"""The options of a `ConvDecoder` that a model may take flat (`GON(latent_dim=32, ...)`)."""


def command_line_options() -> tuple[Option, ...]:
    """The options the command line takes, each once (in `OPTIONS` order)."""
    return tuple(option for option in OPTIONS if option.flags)

"""The model kinds of keras-gon: one registry read by the CLI, the experiments, export and tests.

Importing this module imports no TensorFlow: the command line lists the kinds
and their options before anything heavy loads. `keras_gon.models.build_model` builds a
model of a kind.
"""

from __future__ import annotations

import dataclasses

from keras_gon.errors import InputError
from keras_gon.options import OPTION_GROUPS

DATA_KINDS = ("images", "indexed", "labelled")
"""What a kind trains on: images; (images, example indices) (GLO); (images, labels)."""


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """One kind of model: its class, what it is, its data and the options it takes.

    Attributes:
        name: the command-line name (`keras-gon train NAME`).
        class_name: the class's name in the `keras_gon` namespace.
        description: one line for `keras-gon --help`.
        image_size: the image size the command line trains it at by default.
        data: one of `DATA_KINDS`.
        option_groups: keys of `OPTION_GROUPS` its constructor takes.
        learning_rate: the Adam learning rate `keras-gon train` uses unless given (the
            one its preset was trained at).
        command_line_options: (option, value) pairs `keras-gon train` uses unless given,
            where the class's default (the paper's) trains too slowly on a CPU for a
            first run (its preset's).
    """

    name: str
    class_name: str
    description: str
    image_size: int = 32
    data: str = "images"
    option_groups: tuple = ("decoder",)
    learning_rate: float = 1e-4
    command_line_options: tuple = ()

    @property
    def options(self) -> tuple[str, ...]:
        """Every constructor option of the kind (see `OPTION_GROUPS`)."""
        names = []
        for group in ("model", *self.option_groups):
            names += [n for n in OPTION_GROUPS[group] if n not in names]
        return tuple(names)

    def check_options(self, options) -> None:
        """Refuses, by name, options the kind does not take."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise InputError(f"{self.name} takes no {', '.join(unknown)}")


MODEL_KINDS = {
    kind.name: kind
    for kind in (
        ModelKind(
            "gon",
            "GON",
            "convolutional GON: z = -grad of SSE at the origin (eq. 8)",
            option_groups=("decoder", "origin"),
        ),
        ModelKind(
            "vgon",
            "VariationalGON",
            "variational GON: a posterior from the origin gradient, samples (eqs. 9-10)",
            option_groups=("decoder", "origin", "variational"),
            learning_rate=1e-3,
        ),
        ModelKind(
            "igon",
            "ImplicitGON",
            "implicit GON: a SIREN over pixel coordinates, any resolution (eq. 12)",
            image_size=28,
            option_groups=("implicit", "origin"),
            learning_rate=1e-3,
            command_line_options=(("hidden_units", 64),),
        ),
        ModelKind(
            "classifier",
            "GONClassifier",
            "GON classifier: linear softmax on the origin gradient (eq. 13)",
            data="labelled",
            option_groups=("decoder", "origin", "classifier"),
            learning_rate=1e-3,
        ),
        ModelKind(
            "ae",
            "ConvAutoencoder",
            "autoencoder baseline: the GON's decoder, an encoder",
            option_groups=("decoder", "encoder"),
        ),
        ModelKind(
            "tied_ae",
            "TiedAutoencoder",
            "tied autoencoder baseline: the encoder reuses the decoder's kernels",
        ),
        ModelKind(
            "glo",
            "GLO",
            "GLO baseline: a latent per training image, optimised",
            data="indexed",
            option_groups=("decoder", "glo"),
        ),
        ModelKind(
            "vae",
            "VAE",
            "variational autoencoder baseline with the GON's decoder",
            option_groups=("decoder", "encoder", "variational"),
        ),
    )
}
"""Every model kind by command-line name."""


def get_kind(name: str) -> ModelKind:
    """The kind called `name`, or an error listing the kinds."""
    if name not in MODEL_KINDS:
        raise InputError(f"unknown model {name!r}: expected one of {tuple(MODEL_KINDS)}")
    return MODEL_KINDS[name]


def kind_of(model) -> ModelKind:
    """The registered kind of a model instance (by its class, most specific first)."""
    for cls in type(model).__mro__:
        for kind in MODEL_KINDS.values():
            if kind.class_name == cls.__name__:
                return kind
    raise InputError(f"{type(model).__name__} is not a keras-gon model kind")

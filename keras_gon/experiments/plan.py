"""The study's plan: budgets, the datasets and the runs of every group (`reproduction_specs`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keras_gon.errors import InputError
from keras_gon.experiments.arguments import STUDY_GROUPS as GROUPS
from keras_gon.experiments.study import SETTINGS, RunSpec

PAPER_VGON = dict(latent_dim=48, width=32)
"""The authors' Variational-GON.py: latent 48, width 32 (BatchNorm, batch-mean ELBO, BCE)."""


@dataclasses.dataclass(frozen=True)
class ReproductionBudget:
    """How much each group of the study trains (epochs, seeds, latent sizes)."""

    name: str
    decisive_epochs: int = 30
    decisive_seeds: tuple = (0, 1, 2)
    decisive_latents: tuple = (32, 256)
    table1_epochs: int = 10
    table1_seeds: tuple = (0, 1)
    multistep_epochs: int = 5
    multistep_seeds: tuple = (0,)
    ablation_latent: int = 32
    activation_epochs: int = 3
    activation_latents: tuple = (32, 128, 512)
    activations: tuple = ("elu", "relu", "leaky_relu", "selu", "swish", "tanh")
    origin_epochs: int = 5
    origin_stddevs: tuple = (0.0, 0.1, 0.5, 1.0)
    diagnostic_epochs: int = 30
    diagnostic_seeds: tuple = (0, 1)
    diagnostic_latents: tuple = (32,)
    paper_vgon_epochs: int = 10
    width: int = 16
    eval_images: int = 2000
    steps_per_epoch: int | None = None
    variational_seeds: tuple | None = None
    table1_latents: tuple | None = None
    table1_settings: tuple = ("paper", "ours")
    multistep_settings: tuple = ("paper", "ours")
    sweep_epochs: int = 10
    sweep_seeds: tuple = (0,)
    sweep_latent: int = 256
    widths: tuple = ()
    sweep_latents: tuple = ()
    map_sizes: tuple = ()
    remedy_epochs: int = 10
    remedy_seeds: tuple = (0,)

    @property
    def vgon_seeds(self) -> tuple:
        """The seeds of the decisive variational runs (VGON, VAE)."""
        return self.decisive_seeds if self.variational_seeds is None else self.variational_seeds

    @property
    def ablation_latents(self) -> tuple:
        """The latent sizes of the Table 1 ablations."""
        return (self.ablation_latent,) if self.table1_latents is None else self.table1_latents


BUDGETS = {
    "full": ReproductionBudget("full"),
    # What CI runs: every group and code path, a few steps each.
    "tiny": ReproductionBudget(
        "tiny",
        decisive_epochs=2,
        decisive_seeds=(0, 1),
        decisive_latents=(4,),
        table1_epochs=2,
        table1_seeds=(0,),
        ablation_latent=4,
        activation_epochs=1,
        activation_latents=(4,),
        activations=("elu", "relu"),
        origin_epochs=1,
        origin_stddevs=(0.0, 0.5),
        diagnostic_epochs=1,
        diagnostic_seeds=(0,),
        diagnostic_latents=(4,),
        paper_vgon_epochs=1,
        multistep_epochs=1,
        width=2,
        eval_images=64,
        steps_per_epoch=2,
        sweep_epochs=1,
        sweep_latent=16,
        widths=(2, 4),
        sweep_latents=(4, 16),
        map_sizes=(1, 4),
        remedy_epochs=1,
    ),
}


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
    """A dataset of the study: what it is, how its images are used and its full budget.

    Attributes:
        name: the `--dataset` name.
        title: how reports name it.
        image_size: side of the square images (the paper trains every Table 1-2 dataset
            at 32x32).
        train_images: a fixed random subset of the training images where the whole
            split is too slow here (None: all).
        budget: the `full` budget on this dataset (`tiny` is the same everywhere).
        groups: the study groups run by default.
        data: what `--data` should point to.
    """

    name: str
    title: str
    budget: ReproductionBudget
    groups: tuple
    image_size: int = 32
    train_images: int | None = None
    data: str = ""


_OTHER_COLUMNS = dict(
    decisive_seeds=(0, 1, 2),
    variational_seeds=(0, 1),
    decisive_latents=(32, 256),
    table1_seeds=(0,),
    table1_latents=(32, 256),
    table1_settings=("ours",),
    multistep_settings=("ours",),
    eval_images=2000,
)
"""What the Fashion-MNIST, COIL-20 and CIFAR-10 columns share: GON vs AE at three seeds,
VGON vs VAE at two, the Table 1 ablations at latents 32 and 256 with the library's
default, one seed."""


def _other_column(
    name: str, title: str, epochs: int, groups=("decisive", "table1"), **fields
) -> DatasetPlan:
    """A dataset beyond MNIST: its full budget is `_OTHER_COLUMNS` with `epochs` for the
    decisive runs and Table 1 (`fields` may add budget fields as well as the plan's own)."""
    plan_fields = {k: fields.pop(k) for k in ("train_images", "data") if k in fields}
    budget = ReproductionBudget(
        "full", decisive_epochs=epochs, table1_epochs=epochs, **fields, **_OTHER_COLUMNS
    )
    return DatasetPlan(name, title, budget, groups, **plan_fields)


DATASETS = {
    plan.name: plan
    for plan in (
        DatasetPlan(
            "mnist",
            "MNIST",
            BUDGETS["full"],
            ("decisive", "table1", "multistep", "activations", "origin", "diagnostics"),
            data="a .npz of MNIST, e.g. ../shared/data/mnist22k.npz",
        ),
        _other_column(
            "fashion_mnist",
            "Fashion-MNIST",
            10,
            train_images=12000,
            data="the Fashion-MNIST IDX folder, e.g. ../shared/data/fashion-mnist",
        ),
        _other_column(
            "coil20",
            "COIL-20",
            50,
            data="the folder of COIL-20's processed PNGs (coil-20-proc; 10 % held out, seed 0)",
        ),
        _other_column(
            "cifar10",
            "CIFAR-10",
            6,
            ("decisive", "table1", "multistep", "widths", "latents", "spatial", "remedies"),
            multistep_epochs=3,
            multistep_seeds=(0,),
            sweep_epochs=4,
            sweep_seeds=(0,),
            sweep_latent=256,
            widths=(4, 8, 16, 32),
            sweep_latents=(16, 32, 64, 128, 256, 512),
            map_sizes=(1, 4, 8),
            remedy_epochs=4,
            train_images=12000,
            data="a CIFAR-10 folder with train/ and test/ class folders (cifar10-jpg.tar)",
        ),
    )
}
"""The datasets `keras-gon experiment reproduce --dataset` knows, by name."""


def get_dataset_plan(name: str) -> DatasetPlan:
    """The plan of dataset `name`, or an error listing the known ones."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}: expected one of {tuple(DATASETS)}")
    return DATASETS[name]


def settings() -> tuple[str, ...]:
    """The settings every claim is measured at (`keras_gon.experiments.study.SETTINGS`)."""
    return tuple(SETTINGS)


def reproduction_specs(budget: ReproductionBudget, groups: Sequence[str] = GROUPS) -> list[RunSpec]:
    """Every run of the study, the decisive ones first (seed by seed)."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise InputError(f"unknown study groups {unknown}: expected some of {GROUPS}")
    b, specs = budget, []

    def add(kind, setting, latent_dim, epochs, seed, **fields):
        """One run, at the budget's width unless `fields` give another."""
        specs.append(
            RunSpec(kind, setting, latent_dim, epochs, seed, **{"width": b.width, **fields})
        )

    if "decisive" in groups:
        for seed in sorted(set(b.decisive_seeds) | set(b.vgon_seeds)):
            for latent in b.decisive_latents:
                for setting in settings():
                    kinds = (("gon", "ae") if seed in b.decisive_seeds else ()) + (
                        ("vgon", "vae") if seed in b.vgon_seeds else ()
                    )
                    for kind in kinds:
                        add(kind, setting, latent, b.decisive_epochs, seed, group="decisive")
    z = b.ablation_latent
    if "table1" in groups:
        for seed in b.table1_seeds:
            for latent in b.ablation_latents:
                for setting in b.table1_settings:
                    for kind in ("tied_ae", "gon_detach", "glo"):
                        add(kind, setting, latent, b.table1_epochs, seed, group="table1")
    if "multistep" in groups:
        for seed in b.multistep_seeds:
            for setting in b.multistep_settings:
                for kind in ("gon_10step", "gon_10step_detach"):
                    add(kind, setting, z, b.multistep_epochs, seed, group="multistep")
    sweep = dict(setting="ours", epochs=b.sweep_epochs)
    if "widths" in groups:  # fig. 10b
        for seed in b.sweep_seeds:
            for width in b.widths:
                for kind in ("gon", "ae"):
                    add(
                        kind,
                        latent_dim=b.sweep_latent,
                        seed=seed,
                        width=width,
                        group="widths",
                        **sweep,
                    )
    if "latents" in groups:  # fig. 10c
        for seed in b.sweep_seeds:
            for latent in b.sweep_latents:
                for kind in ("gon", "ae"):
                    add(kind, latent_dim=latent, seed=seed, group="latents", **sweep)
    if "spatial" in groups:  # fig. 10a
        for seed in b.sweep_seeds:
            for size in b.map_sizes:
                for kind in ("gon", "ae"):
                    options = () if size == 1 else (("latent_map_size", size),)
                    label = f"{size}x{size} latent map"
                    add(
                        kind,
                        latent_dim=b.sweep_latent,
                        seed=seed,
                        options=options,
                        group="spatial",
                        label=label,
                        **sweep,
                    )
    if "remedies" in groups:  # the variational GON's remedies the paper points to
        for seed in b.remedy_seeds:
            for latent in b.decisive_latents:
                for label, kind, options in VGON_REMEDIES:
                    add(
                        kind,
                        "ours",
                        latent,
                        b.remedy_epochs,
                        seed,
                        options=options,
                        group="remedies",
                        label=label,
                    )
    if "activations" in groups:
        for latent in b.activation_latents:
            for setting in settings():
                for activation in b.activations:
                    add(
                        "gon",
                        setting,
                        latent,
                        b.activation_epochs,
                        0,
                        activation=activation,
                        group="activations",
                    )
    if "origin" in groups:
        for setting in settings():
            for stddev in b.origin_stddevs:
                for add_origin in (True,) if stddev == 0 else (False, True):
                    add(
                        "gon",
                        setting,
                        z,
                        b.origin_epochs,
                        0,
                        origin_stddev=stddev,
                        add_origin=add_origin,
                        group="origin",
                    )
    if "diagnostics" in groups:
        diagnostic = dict(group="diagnostics")
        # The variational GON at the library's default without its 1/64 step: latents
        # 64x the authors' (the summed inner -ELBO against their batch mean).
        for seed in b.diagnostic_seeds:
            for latent in b.diagnostic_latents:
                label = "VGON, step 1 (latents 64x)"
                add(
                    "vgon",
                    "ours",
                    latent,
                    b.diagnostic_epochs,
                    seed,
                    options=(("step_size", 1.0),),
                    label=label,
                    **diagnostic,
                )
        # The GON's and variational GON's encoders are affine maps of the image: the same
        # baselines with a linear encoder (free, not tied to the decoder's Jacobian).
        for seed in b.diagnostic_seeds:
            for latent in b.decisive_latents:
                for kind, kind_settings in (("ae", settings()), ("vae", ("ours",))):
                    label = f"{kind.upper()}, linear encoder"
                    for setting in kind_settings:
                        add(
                            kind,
                            setting,
                            latent,
                            b.decisive_epochs,
                            seed,
                            options=LINEAR_ENCODER,
                            label=label,
                            **diagnostic,
                        )
        # The authors' own variational GON (latent 48, width 32, BCE) against the same VAE.
        width = PAPER_VGON["width"] if budget.name == "full" else b.width
        latent = PAPER_VGON["latent_dim"] if budget.name == "full" else b.ablation_latent
        for kind in ("vgon_bce", "vae_bce"):
            add(kind, "paper", latent, b.paper_vgon_epochs, 0, width=width, **diagnostic)
    return sorted(specs, key=lambda spec: run_priority(spec, budget))


def run_priority(spec: RunSpec, budget: ReproductionBudget) -> int:
    """The order runs are trained in, so that a study stopped early still has every claim:
    the decisive runs' first two seeds, every ablation's first seed, the diagnostics, then
    the remaining seeds (`sorted` keeps the grid's order within each rank)."""
    first_seeds = set(budget.decisive_seeds[:2])
    if spec.group == "decisive":
        return 0 if spec.seed in first_seeds else 3
    if spec.group == "diagnostics":
        return 2
    return 1 if spec.seed == 0 else 4


LINEAR_ENCODER = (("encoder", "linear"),)
VGON_REMEDIES = (
    ("VGON, 5 inner steps", "vgon", (("num_steps", 5), ("step_size", 1.0 / 320))),
    ("VGON, Gaussian p(x|z) of constant variance", "vgon_gaussian", ()),
    ("VAE, Gaussian p(x|z) of constant variance", "vae_gaussian", ()),
)
"""What the paper points to where the variational GON falls short, each against its VAE:
more than one inner step (5 steps of a fifth of the default step, the multi-step GON's
schedule; against the decisive VAE), and the constant-variance form of the likelihood that
eq. 9's empirical-Bayes reading of the origin gradient assumes (p(x|z) = N(F(z), σ²I), σ
fixed, against the VAE with the same likelihood; -ELBO in nats)."""

"""One training recipe for the whole package: the CLI, the preset builder and the studies.

A `TrainingRecipe` is a training run as data (as pythae's training
configurations are): the model kind and its options, the data, the learning
rate, the budget and the seed. `train(recipe)` runs it, the same way for
every caller: seed -> data (`keras_gon.data.load_dataset`) -> model (the
registry) -> Adam -> `model.fit` -> held-out figures -> parameter count,
and returns a `TrainingRun`.

```python
recipe = keras_gon.training.TrainingRecipe("gon", data="mnist5k", epochs=3,
                                           options={"latent_dim": 32})
run = keras_gon.training.train(recipe)
run.held_out["loss"], run.parameters, run.model
```
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_gon.callbacks import StepTimer, StopOnNonFiniteLoss
from keras_gon.data import load_dataset, with_example_indices
from keras_gon.errors import InputError, NonFiniteLossError
from keras_gon.models import build_model
from keras_gon.registry import ModelKind, get_kind
from keras_gon.validation import check_number, check_positive_int

ADAM_EPSILON = 1e-8
"""Adam's epsilon in every recipe: PyTorch's default, as the authors' code trains."""


def _options_tuple(options: Mapping[str, Any] | Sequence | None) -> tuple:
    if options is None:
        return ()
    items = options.items() if isinstance(options, Mapping) else options
    return tuple(sorted((str(name), value) for name, value in items))


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """A training run as data.

    Attributes:
        kind: a registered model kind (`keras_gon.registry.MODEL_KINDS`).
        data: a `load_dataset` source (a folder of images, a `.npz`, `keras:NAME`, ...).
        options: the model's constructor options, as a mapping or `(name, value)` pairs
            (kept sorted); the image shape, seed and GLO's example count come from the
            data and the recipe.
        image_size: side of the square images (None: the kind's default).
        channels: 1 or 3 for image folders (None: from the data).
        train_images: a fixed random subset of the training images (None: all).
        batch_size: the global batch size.
        lr: Adam's learning rate.
        epochs: epochs, unless `steps` is given.
        steps: train this many steps (over the repeated data) instead of epochs.
        steps_per_epoch: with `epochs`, epochs of this many steps over the repeated data
            (None: whole passes over the data).
        seed: seed of the weights, the data order and every random draw.
        jit_compile: XLA on or off (None: what the model chooses).
        data_dir: TFDS's data_dir.
        manual_dir: TFDS's manual_dir.
    """

    kind: str
    data: Any = "mnist5k"
    options: tuple = ()
    image_size: int | None = None
    channels: int | None = None
    train_images: int | None = None
    batch_size: int = 64
    lr: float = 1e-4
    epochs: int = 10
    steps: int | None = None
    steps_per_epoch: int | None = None
    seed: int = 0
    jit_compile: bool | None = None
    data_dir: str | None = None
    manual_dir: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "options", _options_tuple(self.options))
        kind = get_kind(self.kind)
        unknown = sorted(set(dict(self.options)) - set(kind.options))
        if unknown:
            raise InputError(f"{kind.name} takes no {', '.join(unknown)}")
        fixed = sorted({"image_shape", "seed", "num_examples"} & set(dict(self.options)))
        if fixed:
            raise InputError(
                f"a recipe sets {', '.join(fixed)} itself (image_size, seed, the "
                "data's size): give those, not the model option"
            )
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.epochs, "epochs")
        for name in ("image_size", "steps", "steps_per_epoch", "train_images"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        check_number(self.lr, "lr", minimum=0.0, strict_minimum=True)
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**31:
            raise InputError(f"seed must be an integer in [0, 2**31), got {self.seed!r}")

    @property
    def model_kind(self) -> ModelKind:
        """The registered kind of the recipe's model."""
        return get_kind(self.kind)

    @property
    def size(self) -> int:
        """The side of the images the model trains at."""
        return self.image_size or self.model_kind.image_size

    def replace(self, **changes) -> TrainingRecipe:
        """A copy with `changes` (e.g. `recipe.replace(seed=1)`)."""
        return dataclasses.replace(self, **changes)

    def load_data(self, shuffle: bool = True):
        """`(train, test, info)` for the kind: images, (images, labels) for the classifier,
        (images, example indices) for GLO; the training batches seeded by the recipe."""
        kind = self.model_kind
        indexed = kind.data == "indexed"
        train, test, info = load_dataset(
            self.data,
            image_size=self.size,
            channels=self.channels,
            batch_size=self.batch_size,
            seed=self.seed,
            data_dir=self.data_dir,
            manual_dir=self.manual_dir,
            with_labels=kind.data == "labelled",
            shuffle_train=shuffle and not indexed,
            train_images=self.train_images,
        )
        if indexed:
            train = with_example_indices(train, self.batch_size, seed=self.seed)
        return train, test, info

    def build(self, info) -> keras.Model:
        """The recipe's new model for data described by `info` (a `DataInfo`), its weights
        drawn from the recipe's seed (the same recipe, the same initial weights)."""
        keras.utils.set_random_seed(self.seed)
        options = {**dict(self.options), "image_shape": info.image_shape, "seed": self.seed}
        if "num_examples" in self.model_kind.options:
            options["num_examples"] = info.num_train
        return build_model(self.model_kind, **options)

    def optimizer(self) -> keras.optimizers.Optimizer:
        """Adam at the recipe's learning rate, PyTorch's epsilon."""
        return keras.optimizers.Adam(self.lr, epsilon=ADAM_EPSILON)


@dataclasses.dataclass
class TrainingRun:
    """What `train` returns: the trained model, its data and its figures."""

    recipe: TrainingRecipe
    model: keras.Model
    info: Any
    train_data: Any
    test_data: Any
    history: Any
    timer: StepTimer
    held_out: dict
    collapsed: bool = False

    @property
    def steps(self) -> int:
        """Training steps taken."""
        return self.timer.steps

    @property
    def seconds(self) -> float:
        """Wall time of the training."""
        return self.timer.seconds

    @property
    def parameters(self) -> int:
        """The model's trained parameters (`count_parameters`)."""
        return count_parameters(self.model)

    @property
    def train_loss(self) -> float:
        """Keras's running training loss of the last epoch."""
        losses = self.history.history.get("loss") or [math.nan]
        return float(losses[-1])


def count_parameters(model) -> int:
    """Trainable parameters, and GLO's latent table (trained by its own SGD)."""
    count = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    if hasattr(model, "latent_table"):
        count += int(np.prod(model.latent_table.shape))
    return count


def _held_out_figures(history) -> dict | None:
    """The held-out figures of fit's validation after its last epoch (the final weights on
    the whole test set: what `evaluate` would give again), or None."""
    figures = {
        key[len("val_") :]: values[-1]
        for key, values in history.history.items()
        if key.startswith("val_") and values
    }
    return figures if "loss" in figures and history.epoch else None


def train(
    recipe: TrainingRecipe,
    *,
    model: keras.Model | None = None,
    data=None,
    strategy=None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validate: bool = True,
    evaluate: bool = True,
    initial_epoch: int = 0,
    verbose: int = 0,
) -> TrainingRun:
    """Runs `recipe` and returns the `TrainingRun`.

    Args:
        recipe: what to train.
        model: a model to train instead of the recipe's new one (e.g. a preset to
            fine-tune); compiled anew with the recipe's optimiser.
        data: `(train, test, info)` already loaded (default: `recipe.load_data()`).
        strategy: a `tf.distribute` strategy whose scope builds and compiles the model.
        callbacks: more `fit` callbacks (a `StepTimer` and `StopOnNonFiniteLoss` are
            added).
        validate: validate on the test data after every epoch (not for GLO, whose
            held-out latents are fitted by gradient descent: evaluated once at the end).
        evaluate: compute the held-out figures (from the last validation, or
            `evaluate`); False leaves `held_out` empty.
        initial_epoch: the epoch to start from (a resumed run).
        verbose: Keras's progress output.

    A training that collapsed to a constant output (`LatentModel.fit`'s check) is
    reported by a `RuntimeWarning` and `TrainingRun.collapsed`.

    Raises:
        NonFiniteLossError: training stopped at a non-finite loss (the model keeps the
            weights of the last finite step).
    """
    import contextlib

    keras.utils.set_random_seed(recipe.seed)
    train_data, test_data, info = data if data is not None else recipe.load_data()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = model if model is not None else recipe.build(info)
        model.compile(optimizer=recipe.optimizer(), jit_compile=recipe.jit_compile)
    if getattr(model, "prior", None) == "fitted" and info.num_train < 2:
        raise InputError(
            f"prior='fitted' (--prior fitted) is fitted to the training images: it needs at "
            f"least 2, the data has {info.num_train}"
        )
    timer, guard = StepTimer(), StopOnNonFiniteLoss()
    indexed = recipe.model_kind.data == "indexed"
    validation = test_data if validate and not indexed else None
    fit = dict(
        validation_data=validation,
        callbacks=[timer, guard, *callbacks],
        verbose=verbose,
        initial_epoch=initial_epoch,
    )
    # A fitted prior (variational models) is fitted to one pass of the training images,
    # here, not by `fit` to the batches of a repeated dataset.
    one_pass_prior = (
        getattr(model, "prior", None) == "fitted"
        and bool(recipe.steps or recipe.steps_per_epoch)
        and model.fit_prior_after_fit
    )
    if one_pass_prior:
        model.fit_prior_after_fit = False
    try:
        if recipe.steps:
            history = model.fit(train_data.repeat(), epochs=1, steps_per_epoch=recipe.steps, **fit)
        elif recipe.steps_per_epoch:
            history = model.fit(
                train_data.repeat(),
                epochs=recipe.epochs,
                steps_per_epoch=recipe.steps_per_epoch,
                **fit,
            )
        else:
            history = model.fit(train_data, epochs=recipe.epochs, **fit)
    finally:
        if one_pass_prior:
            del model.fit_prior_after_fit  # (back to the class's default, True)
    if one_pass_prior and guard.stopped_at_step is None:
        model.fit_prior_or_warn(train_data)
    if guard.stopped_at_step is not None:
        raise NonFiniteLossError(
            f"training stopped at step {guard.stopped_at_step}: the loss became non-finite "
            f"(try a lower learning rate than {recipe.lr:g})"
        )
    held_out = {}
    if evaluate:
        held_out = _held_out_figures(history) if validation is not None else None
        if held_out is None:
            held_out = model.evaluate(test_data, verbose=0, return_dict=True)
        held_out = {name: float(value) for name, value in held_out.items()}
    return TrainingRun(
        recipe=recipe,
        model=model,
        info=info,
        train_data=train_data,
        test_data=test_data,
        history=history,
        timer=timer,
        held_out=held_out,
        collapsed=bool(getattr(history, "collapsed", False)),
    )

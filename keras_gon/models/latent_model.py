"""The base of every keras-gon model: the one training step, metrics, checks and inference API."""

from __future__ import annotations

import inspect
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.distribute import (
    has_accelerator,
    is_distributed,
    scale_loss_for_replicas,
    step_logs,
)
from keras_gon.errors import InputError
from keras_gon.options import OPTION_GROUPS
from keras_gon.validation import (
    channels_first_error,
    check_choice,
    check_image_shape,
    check_positive_int,
)

OUTER_TARGETS = ("input", "y")
COLLAPSE_RANGE = 1e-6
"""Reconstructions of different images within this of each other at every pixel: one
constant output, a collapsed training (`LatentModel.outputs_collapsed`)."""
COLLAPSE_CHECK_IMAGES = 16
"""Images of the first training batch `fit` checks for a collapsed output afterwards."""
KERAS_MODEL_OPTIONS = ("name", "dtype", "trainable", "autocast")
"""The `keras.Model` constructor options a keras-gon model passes on."""


CPU_XLA_MAX_IMAGE_SIDE = 32
"""On the CPU, XLA compiles a step only where it was measured faster, on images of at most
this side: many small elementwise ops, which XLA fuses (the GON's forward-mode origin under
batch statistics, the discretised logistic likelihood); beyond, its convolutions are slower
than TensorFlow's own (benchmarks/RESULTS.md, "XLA on the CPU")."""


@keras.saving.register_keras_serializable(package="keras_gon")
class LatentModel(keras.Model):
    """A `keras.Model` whose examples have latents, decoded back into data.

    It owns what every keras-gon model shares, written once: `train_step`
    and `test_step` (per-example terms, their batch mean, `self.losses`, the
    loss divided by the replicas of a `tf.distribute` strategy, the
    optimizer's loss scaling for mixed precision, `step_logs` for
    multi-worker runs), the metric trackers, input checks in `fit`,
    `evaluate` and `predict`, a clean stop on a non-finite loss, and the
    inference API (`encode`, `decode`, `reconstruct`, each traced once).

    Subclasses fill hooks, never a step of their own:

    - `find_latents(images, training)`: how a latent is found (an encoder,
      the origin gradient, a table...); returns `(latents, terms)` with
      per-example terms to report (e.g. the GON's inner loss);
    - `decode_latents(latents, training)`: images F(z) in [0, 1];
    - `outer_terms(target, latents, training)`: the per-example loss under
      "loss" (and any other terms), by default `outer_loss` of the decoded
      latents;
    - or `compute_terms(data, training)` as a whole, for models whose step
      needs more (labels, example indices, coordinate subsets), and
      `after_train_step(terms)` for state updated after the optimizer's step.

    Args:
        image_shape: `(height, width, channels)` of one example.
        latent_dim: size of a latent.
        outer_loss: per-example reconstruction loss ("sse": summed squared
            error, "mse", "bce", or a callable `(y_true, y_pred) -> (batch,)`).
        outer_target: what the outer loss compares the reconstruction with:
            "input" (the data itself) or "y" (the target of `(source, target)`
            pairs: modality conversion, §3.5).
        seed: seed of the model's random state.
        **kwargs: `keras.Model` options (`name`, `dtype`, ...).
    """

    metric_terms: tuple[str, ...] = ()
    """Per-example terms reported next to `loss` (the mean over the examples seen)."""

    def __init__(
        self,
        image_shape=(32, 32, 1),
        latent_dim: int = 32,
        outer_loss="sse",
        outer_target: str = "input",
        seed: int | None = None,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - set(KERAS_MODEL_OPTIONS))
        if unknown:
            origin = [name for name in unknown if name in OPTION_GROUPS["origin"]]
            reason = (
                f"{type(self).__name__} has no origin gradient: it"
                if origin
                else (type(self).__name__)
            )
            raise InputError(f"{reason} takes no {', '.join(unknown)}")
        super().__init__(**kwargs)
        # === Config ===
        self.image_shape = check_image_shape(image_shape)
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.outer_loss = gon_losses.deserialize(outer_loss)
        self.outer_target = check_choice(outer_target, "outer_target", OUTER_TARGETS)
        self.seed = seed

        # === State ===
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = [keras.metrics.Mean(name=name) for name in self.metric_terms]
        self._inference_functions = {}

    # --- hooks -------------------------------------------------------------------------

    def find_latents(self, images, training=False):
        """`(latents, terms)`: the latents of `images` and per-example terms to report."""
        return self.encode_latents(images, training=training), {}

    def encode_latents(self, images, training=False):
        """Graph-level encoder: latents (batch, latent_dim) of images (no input checks)."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode_latents")

    def decode_latents(self, latents, training=False):
        """Graph-level decoder: images F(latents) in [0, 1] (no input checks)."""
        raise NotImplementedError(f"{type(self).__name__} must implement decode_latents")

    def outer_terms(self, target, latents, training=False) -> dict:
        """Per-example terms of the latents' reconstruction: "loss", any `metric_terms`,
        and the `reconstructions` (images) that `compile(metrics=...)` compares with the target."""
        reconstructions = self.decode_latents(latents, training=training)
        return {
            "loss": self.outer_loss(target, reconstructions),
            "reconstructions": reconstructions,
        }

    def outer_losses(self, target, latents, training=False):
        """The per-example outer loss of the latents' reconstruction (`outer_terms`'s "loss")."""
        return self.outer_terms(target, latents, training=training)["loss"]

    def compute_terms(self, data, training=False) -> dict:
        """The per-example terms of one batch: "loss", every `metric_terms` name, and extras.

        Extras: "latents"; "predictions" and "targets" for compiled metrics.
        """
        images = self.unpack_images(data)
        target = self.unpack_target(data, images)
        latents, terms = self.find_latents(images, training=training)
        outer = self.outer_terms(target, latents, training=training)
        terms = {**terms, **outer, "latents": latents}
        if "reconstructions" in outer:
            terms.setdefault("predictions", outer["reconstructions"])
            terms.setdefault("targets", target)
        return terms

    def after_train_step(self, terms: dict) -> None:
        """State updated after the optimizer's step (e.g. GLO's latent table); none by default."""
        return None  # (a body of only a docstring is one AutoGraph cannot convert)

    def required_targets(self) -> str | None:
        """The error for data without the `y` the model trains on (None: it trains on
        images alone, and `fit` refuses a `y`, which would be ignored)."""
        if self.outer_target != "input":
            return "outer_target='y' needs (source, target) pairs, the data has no target"
        return None

    def check_training_data(self, x, y=None, validation_data=None) -> None:
        """Refuses data `fit` cannot train on (beyond `prepare_data`'s image checks): no
        targets where `required_targets` needs them, targets where the model would ignore
        them. Checked before a step is traced."""
        required = self.required_targets()
        parts = [(x, y, "x")]
        if isinstance(validation_data, tuple) and validation_data:
            parts.append((validation_data[0], (*validation_data, None)[1], "validation_data"))
        elif validation_data is not None:
            parts.append((validation_data, None, "validation_data"))
        for data, targets, name in parts:
            has_targets = _has_targets(data, targets)
            if has_targets is None:
                continue
            if required and not has_targets:
                raise InputError(required)
            if not required and has_targets:
                raise InputError(
                    f"{type(self).__name__} trains on images alone: {name} comes with "
                    "targets (y), which it would ignore; give the images only"
                )

    def integer_targets(self) -> tuple[str, str, int] | None:
        """`(what, option, n)` when the `y` of the model's data are integers in [0, n)
        (the classifier's labels, GLO's example indices), else None: checked before
        `fit`/`evaluate` for arrays, in the pipeline as the batches come for datasets."""
        return None

    def check_targets(self, y, name: str = "y") -> None:
        """Refuses integer targets (`integer_targets`) of a NumPy array outside [0, n)."""
        bounds = self.integer_targets()
        if bounds is None or y is None or tf.is_tensor(y) or isinstance(y, tf.data.Dataset):
            return
        what, option, count = bounds
        values = np.asarray(y)
        if values.dtype.kind not in "iu":
            raise InputError(f"{name} must hold integer {what}, got dtype {values.dtype}")
        bad = values[(values < 0) | (values >= count)]
        if bad.size:
            raise InputError(
                f"{what} must be in [0, {count}) ({option}={count}), got "
                f"{bad.flat[0]} ({bad.size} of {values.size} {name} outside)"
            )

    def training_callbacks(self) -> list:
        """Callbacks `fit` adds unless given (e.g. the implicit GON's latent statistics)."""
        return []

    def after_fit(self, x, fit_options: dict) -> None:
        """What `fit` does after training, given its (prepared) training data `x` and its
        other keyword arguments (e.g. the variational models' fitted prior); nothing here."""

    def default_jit_compile(self) -> bool:
        """`compile(jit_compile=None)`: XLA where it was measured faster. Never under a
        strategy (as Keras); on an accelerator, where `xla_pays_on_accelerator`; on the
        CPU, where TensorFlow's own (oneDNN) convolutions beat XLA's, only on images up
        to `CPU_XLA_MAX_IMAGE_SIDE` and where `xla_fuses_on_cpu` (benchmarks/RESULTS.md,
        "XLA on the CPU")."""
        if is_distributed(self):
            return False
        if has_accelerator():
            return self.xla_pays_on_accelerator()
        small = max(self.image_shape[:2]) <= CPU_XLA_MAX_IMAGE_SIDE
        return small and self.xla_fuses_on_cpu()

    def xla_pays_on_accelerator(self) -> bool:
        """Whether XLA compiles the step on a GPU or TPU (`default_jit_compile`): yes here."""
        return True

    def xla_fuses_on_cpu(self) -> bool:
        """Whether the step is mostly small elementwise ops that XLA fuses, so that it pays
        on the CPU for small images (`default_jit_compile`): no here."""
        return False

    def output_images(self, outputs):
        """Images in [0, 1] from the decoder's raw output (e.g. without a likelihood's scale)."""
        return outputs

    # --- the training step (written once) ------------------------------------------------

    def train_step(self, data):
        guarded = tf.distribute.in_cross_replica_context() or not tf.distribute.has_strategy()
        if guarded:  # what a step with a non-finite loss puts back (below)
            state = [
                *self.trainable_variables,
                *self.non_trainable_variables,
                *self.optimizer.variables,
            ]
            before = [tf.identity(variable.value) for variable in state]
        with tf.GradientTape() as tape:
            terms = self.compute_terms(data, training=True)
            loss = tf.reduce_mean(terms["loss"])
            if self.losses:
                loss = loss + tf.add_n([tf.cast(extra, loss.dtype) for extra in self.losses])
            # Under a tf.distribute strategy the optimizer sums the replicas' gradients:
            # differentiate mean / replicas (as Keras's losses do). Only this loss is
            # scaled for mixed precision (a GON's inner loss, whose gradient is the
            # latent, never is).
            scaled_loss = self.optimizer.scale_loss(scale_loss_for_replicas(loss))
        gradients = tape.gradient(scaled_loss, self.trainable_variables)

        finite = tf.math.is_finite(tf.cast(loss, "float32"))
        if guarded:
            # A step whose loss is not finite changes no weight (nor a moving statistic):
            # training stops on it (`keras_gon.callbacks.StopOnNonFiniteLoss`) with the
            # last finite weights. Branch-free (update, then select the old values back):
            # the same update in a `tf.cond` made XLA-compiled steps much slower on CPU
            # (benchmarks/RESULTS.md).
            self.optimizer.apply(gradients, self.trainable_variables)
            self.after_train_step(terms)
            for variable, value in zip(state, before):
                variable.assign(tf.where(finite, variable.value, value))
        else:
            # Under a strategy the update synchronises the replicas and cannot sit
            # in a branch: a non-finite replica contributes zero gradients instead
            # (the optimizer's state still steps; no weight becomes non-finite).
            gradients = [
                None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in gradients
            ]
            self.optimizer.apply(gradients, self.trainable_variables)
            self.after_train_step(terms)
        return self.update_metrics(terms)

    def test_step(self, data):
        return self.update_metrics(self.compute_terms(data, training=False))

    def update_metrics(self, terms: dict) -> dict:
        """Updates the trackers with per-example values (a partial batch counts for its size)."""
        self.loss_tracker.update_state(terms["loss"])
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name])
        if self.compiled_metrics_container() is not None and "predictions" in terms:
            predictions = tf.cast(terms["predictions"], "float32")
            targets = (
                tf.cast(terms["targets"], predictions.dtype)
                if (terms["targets"].dtype.is_floating)
                else terms["targets"]
            )
            self.compiled_metrics_container().update_state(targets, predictions)
        return step_logs(self.get_metrics_result())

    def compiled_metrics_container(self):
        """The metrics given to `compile(metrics=...)` (Keras's container), or None."""
        return next((m for m in super().metrics if self._is_compiled_metrics(m)), None)

    def _is_compiled_metrics(self, metric) -> bool:
        own = (self.loss_tracker, *self.term_trackers)
        return not any(metric is m for m in own) and not (
            isinstance(metric, keras.metrics.Mean) and metric.name == "loss"
        )

    @property
    def metrics(self):
        # Keras's compile() adds a loss tracker of its own, unused here: the
        # model's trackers, then what compile(metrics=...) asked for.
        compiled = [m for m in super().metrics if self._is_compiled_metrics(m)]
        return [self.loss_tracker, *self.term_trackers, *compiled]

    # --- Keras API with checks -------------------------------------------------------

    def compile(self, optimizer="adam", *, loss=None, metrics=None, jit_compile=None, **kwargs):
        """As `keras.Model.compile`; the losses are constructor arguments, not `loss`.

        `metrics` (e.g. `["mae"]`) are computed on the reconstructions against
        the inputs (the class probabilities against the labels for the
        classifier). `jit_compile=None` chooses what was measured fastest for
        the model (`default_jit_compile`): not Keras's "auto", which turns XLA
        on wherever the layers allow it.
        """
        if loss is not None:
            raise InputError(
                f"{type(self).__name__}.compile() takes no loss: its losses are constructor "
                "arguments (inner_loss/outer_loss, or likelihood for the variational models)"
            )
        if jit_compile is None:
            jit_compile = self.default_jit_compile()
        super().compile(optimizer=optimizer, metrics=metrics, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded model (Keras skips this for a custom `compile`)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def prepare_data(self, data, name: str = "x"):
        """Checks data given to `fit`/`evaluate`/`predict` before Keras traces a step.

        NumPy images, `(N, H, W)` or `(N, H, W, C)` of any size, are checked
        as `keras_gon.data.check_images` does (a numeric dtype, finite values
        in [0, 255], the model's channel count; float arrays above 1 are
        scaled to [0, 1] here); uint8 arrays are kept and scaled in the graph
        (`keras_gon.data.preprocess_images`), which also resizes. A dataset's
        images must have rank 3 or 4 and the model's channels. Returns the data
        to pass on.
        """
        from keras_gon.data.arrays import validate_images
        from keras_gon.data.preprocessing import preprocess_images

        size = tuple(self.image_shape[:2])
        if isinstance(data, tf.data.Dataset):
            if int(data.cardinality()) == 0:
                raise InputError(f"{name} is an empty dataset: it holds no batch of images")
            self.check_data_shapes(data)
            resize = _example_shape(data) is not None and tuple(_example_shape(data)[1:3]) != size
            return data.map(lambda *batch: self._checked_batch(batch, resize, name))
        if isinstance(data, (np.ndarray, list)) or (
            hasattr(data, "shape") and hasattr(data, "dtype") and not tf.is_tensor(data)
        ):
            array, divisor = validate_images(
                data, name=name, channels=self.image_shape[-1], scale="dtype"
            )
            if tuple(array.shape[1:3]) != size:  # resized once, here, in chunks
                return np.concatenate(
                    [
                        preprocess_images(array[i : i + 1024], self.image_shape, divisor).numpy()
                        for i in range(0, len(array), 1024)
                    ]
                )
            if np.issubdtype(array.dtype, np.floating) and divisor != 1.0:
                array = (array / np.float32(divisor)).astype("float32")
            return array
        self.check_data_shapes(data)
        return data

    def _checked_batch(self, batch: tuple, resize: bool, name: str):
        """A dataset's batch after the value checks of its images (`check_image_values`)
        and integer targets (`integer_targets`), in the pipeline (not the XLA step);
        resized there if `resize` (the antialiased kernel is not XLA's)."""
        from keras_gon.data.preprocessing import (
            check_image_values,
            graph_check,
            preprocess_images,
        )

        if isinstance(batch[0], dict):
            return batch if len(batch) > 1 else batch[0]
        images = check_image_values(batch[0], f"the images of {name}")
        if resize:
            images = preprocess_images(images, self.image_shape)
        rest = list(batch[1:])
        bounds = self.integer_targets()
        if bounds is not None and rest and rest[0].dtype.is_integer:
            what, option, count = bounds
            values = rest[0]
            low, high = tf.reduce_min(values), tf.reduce_max(values)
            ok = (tf.size(values) == 0) | ((low >= 0) & (high < count))
            with tf.control_dependencies(
                [
                    graph_check(
                        ok,
                        f"{what} must be in [0, {count}) ({option}={count}), got ",
                        tf.where(high >= count, high, low),
                    )
                ]
            ):
                rest[0] = tf.identity(values)
        return (images, *rest) if rest else images

    def check_data_shapes(self, *datasets) -> None:
        """Refuses data whose images have the wrong rank or channel count, naming the shapes."""
        channels = self.image_shape[-1]
        for data in datasets:
            shape = _example_shape(data)
            if shape is None:
                continue
            layout_error = channels_first_error(shape, "the data's images")
            if layout_error is not None:
                raise layout_error
            rank_ok = len(shape) in (3, 4)
            channels_ok = (len(shape) == 3 and channels == 1) or (
                len(shape) == 4 and shape[-1] in (None, channels)
            )
            if not (rank_ok and channels_ok):
                grey = " (or (batch, height, width))" if channels == 1 else ""
                raise InputError(
                    f"data has shape {shape}: the model expects images (batch, "
                    f"height, width, {channels}){grey} of any size"
                )

    def fit(self, x=None, y=None, *args, callbacks=None, validation_data=None, **kwargs):
        """`keras.Model.fit` after the input checks, stopping cleanly on a non-finite loss.

        NumPy images of any size, uint8 or float, `(N, H, W)` or with channels
        (e.g. `keras.datasets.mnist.load_data()`'s) are checked and scaled as
        `prepare_data` says. A non-finite loss stops training with a warning,
        and the model keeps the weights of the last finite step. A training that
        collapsed to a constant output (`outputs_collapsed` on the first training
        batch) is reported by a warning and `history.collapsed`.
        """
        from keras_gon.callbacks import StopOnNonFiniteLoss
        from keras_gon.data.preprocessing import input_errors_from_graph

        x = self.prepare_data(x)
        self.check_targets(y)
        if isinstance(validation_data, tuple) and validation_data:
            validation_data = (
                self.prepare_data(validation_data[0], "validation_data"),
                *validation_data[1:],
            )
            self.check_targets(
                validation_data[1] if len(validation_data) > 1 else None, "validation_data's y"
            )
        elif validation_data is not None:
            validation_data = self.prepare_data(validation_data, "validation_data")
        self.check_training_data(x, y, validation_data)
        callbacks = list(callbacks or [])
        for callback in (StopOnNonFiniteLoss(), *self.training_callbacks()):
            if not any(isinstance(c, type(callback)) for c in callbacks):
                callbacks.append(callback)
        given = {**dict(zip(FIT_ARGUMENTS, args)), **kwargs}  # (positional ones by name)
        # Keras ignores `shuffle` for a dataset (the pipeline shuffles) but warns on every
        # fit because its default is True.
        if (isinstance(x, tf.data.Dataset) or inspect.isgenerator(x)) and "shuffle" not in given:
            kwargs["shuffle"] = False
        self.build_optimizer()
        with input_errors_from_graph():  # a dataset's bad batch: one line, as for arrays
            try:
                history = super().fit(
                    x, y, *args, callbacks=callbacks, validation_data=validation_data, **kwargs
                )
            except ValueError as error:  # (Keras's message prints the whole batch)
                if "generator must return a tuple" not in str(error):
                    raise
                raise InputError(
                    "a generator given to fit must yield tuples, (images,) or (images, "
                    "targets), not bare arrays: yield (batch,)"
                ) from None
        self.after_fit(x, {**given, "callbacks": callbacks})
        images = _first_images(x)
        history.collapsed = images is not None and self.outputs_collapsed(images)
        if history.collapsed:
            warnings.warn(
                "every image of the first training batch has the same reconstruction: training "
                "collapsed to a constant output (saturated outputs, nothing learnt); try a "
                "lower learning rate",
                RuntimeWarning,
                stacklevel=2,
            )
        return history

    def outputs_collapsed(self, images) -> bool:
        """Whether different `images` all get the same reconstruction (to `COLLAPSE_RANGE`
        at every pixel): what an absurd learning rate leaves behind."""
        if len(images) < 2:
            return False
        reconstructions = np.asarray(self.reconstruct_batch(images))  # eager, a few images
        return float(np.ptp(reconstructions, axis=0).max()) < COLLAPSE_RANGE

    def build_optimizer(self) -> None:
        """Creates the optimizer's variables (Adam's moments) now, if the model is built.

        Without a distribution strategy Keras creates them inside the first
        trace of `train_step`, and TensorFlow then traces the step a second
        time (a function that created variables is traced again without
        them): one whole second-order trace at every `fit`'s start.
        """
        if self.optimizer is not None and self.built and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def export(
        self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs
    ):
        """`keras.Model.export` (what `predict` returns), with the model's own inputs by default.

        Keras cannot infer the input of a subclassed model that was never
        called. With `format="tf_saved_model"` (reload with
        `keras.layers.TFSMLayer`) and no `input_signature`, the `serve`
        endpoint takes what `predict` takes: float32 images in [0, 1] or uint8
        grey levels, `(N, H, W, C)` (or `(N, H, W)` for grey models) of any
        size, checked and prepared as `predict` does (its `serving_default`
        signature is the float32 one). `format="onnx"` (needs `tf2onnx`; see
        `keras_gon.export` for the kinds whose encoder converts) takes float32
        `(N, *image_shape)`. For TF-Serving with named `encode`/`decode`/...
        signatures, use `keras_gon.export.export_saved_model`.
        """
        if input_signature is not None or format != "tf_saved_model":
            if input_signature is None:
                input_signature = [
                    tf.TensorSpec((None, *self.image_shape), tf.float32, name="images")
                ]
            return super().export(
                filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs
            )
        from keras_gon.data.preprocessing import check_image_values

        def serve(images):
            return self(check_image_values(images), training=False)

        serve = tf.function(serve, autograph=False)
        channels = self.image_shape[-1]
        for dtype in ("float32", "uint8"):  # the first one is the serving_default signature
            serve.get_concrete_function(
                tf.TensorSpec((None, None, None, channels), dtype, name="images")
            )
            if channels == 1:
                serve.get_concrete_function(tf.TensorSpec((None, None, None), dtype, name="images"))
        archive = keras.export.ExportArchive()
        archive.track(self)
        archive.add_endpoint("serve", serve)
        archive.write_out(filepath, verbose=True if verbose is None else verbose)
        return None

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate` after `prepare_data`'s input checks."""
        from keras_gon.data.preprocessing import input_errors_from_graph

        x = self.prepare_data(x)
        self.check_targets(y)
        with input_errors_from_graph():
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` (reconstructions) after `prepare_data`'s input checks."""
        from keras_gon.data.preprocessing import input_errors_from_graph

        x = self.prepare_data(x)
        with input_errors_from_graph():
            return super().predict(x, *args, **kwargs)

    def call(self, inputs, training=None):
        """Reconstructions F(z(x)) of a batch of images of any size (what `predict` returns)."""
        return self.reconstruct_batch(inputs, training=training)

    def reconstruct_batch(self, inputs, training=None):
        """Graph-level (or eager) reconstructions F(z(x)) of a batch of images of any size,
        for every kind (`call` returns class probabilities for the classifier)."""
        latents, _ = self.find_latents(self.prepare_images(inputs), training=bool(training))
        return self.decode_latents(latents, training=bool(training))

    # --- presets --------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset):
        """A pretrained model: a built-in preset name (`keras_gon.list_presets()`), a preset
        folder (`save_to_preset`) or a `.keras` file. `GON.from_preset` refuses a preset of
        another kind; `LatentModel.from_preset` takes any."""
        from keras_gon.presets import load_preset

        model = load_preset(preset)
        if not isinstance(model, cls):
            raise InputError(
                f"preset {preset!r} holds a {type(model).__name__}, not a "
                f"{cls.__name__} (use {type(model).__name__}.from_preset)"
            )
        return model

    def save_to_preset(self, directory, metadata: dict | None = None):
        """Writes the model as a preset folder (config.json, model.weights.h5, metadata.json)."""
        from keras_gon.presets import save_to_preset

        return save_to_preset(self, directory, metadata)

    # --- data ---------------------------------------------------------------------------

    @property
    def latent_dtype(self) -> str:
        """dtype of latents and data: the variables' dtype (float32 under mixed precision)."""
        return self.dtype_policy.variable_dtype

    def prepare_images(self, images, what: str = "images"):
        """Graph-level: any batch of images as the model's input (`keras_gon.data.preprocess_images`:
        scaled to [0, 1], resized to `image_shape`), in `latent_dtype`."""
        from keras_gon.data.preprocessing import preprocess_images

        images = tf.convert_to_tensor(images)
        shape = tuple(images.shape)
        channels = self.image_shape[-1]
        layout_error = channels_first_error(shape, what)
        if layout_error is not None:
            raise layout_error
        if (
            images.shape.rank not in (3, 4)
            or (images.shape.rank == 3 and channels != 1)
            or (images.shape.rank == 4 and shape[-1] not in (None, channels))
        ):
            raise InputError(
                f"{what} have shape {shape}, the model expects (batch, height, width, "
                f"{channels}) images of any size"
            )
        return tf.cast(preprocess_images(images, self.image_shape), self.latent_dtype)

    def unpack_images(self, data):
        """The images of a batch (x of `(x, y, sample_weight)`), prepared (`prepare_images`)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.prepare_images(x, "batches")

    def unpack_target(self, data, images):
        """The outer loss's target: the images, or `y` of `(source, target)` pairs (§3.5)."""
        if self.outer_target == "input":
            return images
        _, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise InputError(
                "outer_target='y' needs (source, target) pairs, the data has no target"
            )
        return self.prepare_images(y, "targets")

    def unpack_integers(self, data, message: str):
        """The integer `y` of `(x, y)` batches, flat and int32 (labels, example indices)."""
        _, values, _ = keras.utils.unpack_x_y_sample_weight(data)
        if values is None or not values.dtype.is_integer:
            raise InputError(message)
        return tf.cast(tf.reshape(values, (-1,)), "int32")

    # --- inference API ------------------------------------------------------------------

    def reset_inference_functions(self) -> None:
        """Drops the traced `encode`/`decode`/... functions (traced again on next use)."""
        self._inference_functions.clear()

    def inference_function(self, name: str, fn):
        """`fn` as a `tf.function`, traced once per model and kept under `name`."""
        if name not in self._inference_functions:
            self._inference_functions[name] = tf.function(fn, reduce_retracing=True)
        return self._inference_functions[name]

    def check_images(self, images):
        """`images` (any size; integer grey levels 0-255 or floats in [0, 1], the rule of
        `keras_gon.data.preprocessing.check_image_values`, which the exported signatures
        run too) as a float32 tensor in [0, 1], or a clear error; the inference functions
        resize them (`prepare_images`)."""
        from keras_gon.data.arrays import check_images

        array = check_images(images, name="images", channels=self.image_shape[-1], scale="dtype")
        return tf.convert_to_tensor(array, dtype=self.latent_dtype)

    def check_latents(self, latents):
        """`latents` as a tensor (batch, latent_dim), or a clear error."""
        array = np.asarray(latents)
        if array.dtype.kind not in "fiu":
            raise InputError(f"latents must be numeric, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != self.latent_dim:
            raise InputError(
                f"latents have shape {array.shape}, the model expects (batch, {self.latent_dim})"
            )
        if not np.all(np.isfinite(array)):
            raise InputError("latents contain NaN or infinite values")
        return tf.convert_to_tensor(array, dtype=self.latent_dtype)

    def encode(self, images):
        """Latents of `images` at inference: (batch, latent_dim).

        `images` is (batch, H, W, C), float in [0, 1] or uint8; the model runs
        in inference mode and no variable changes.
        """
        x = self.check_images(images)
        return self.inference_function(
            "encode", lambda x: self.encode_latents(self.prepare_images(x))
        )(x)

    def decode(self, latents):
        """F(latents) at inference: images (batch, H, W, C) in [0, 1]."""
        z = self.check_latents(latents)
        return self.inference_function("decode", lambda z: self.decode_latents(z))(z)

    def reconstruct(self, images):
        """F(z(x)) at inference: encode then decode in one graph."""
        x = self.check_images(images)
        return self.inference_function("reconstruct", lambda x: self.reconstruct_batch(x))(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "latent_dim": self.latent_dim,
                "outer_loss": gon_losses.serialize(self.outer_loss),
                "outer_target": self.outer_target,
                "seed": self.seed,
            }
        )
        return config


FIT_ARGUMENTS = (
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
    "class_weight",
    "sample_weight",
    "initial_epoch",
    "steps_per_epoch",
)
"""`keras.Model.fit`'s arguments after x and y, in order (positional arguments by name)."""


def _first_images(data, count: int = COLLAPSE_CHECK_IMAGES):
    """Up to `count` images of the first batch of fit's `x` (a dataset or an array)."""
    if isinstance(data, tf.data.Dataset):
        for batch in data.take(1):
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            return images[:count] if not isinstance(images, dict) else None
        return None
    if isinstance(data, np.ndarray) and data.ndim in (3, 4):
        return data[:count]
    return None


def _has_targets(data, y) -> bool | None:
    """Whether data given to `fit` comes with targets: `y`, or a dataset of `(x, y, ...)`
    tuples; None when it cannot be told (a generator, a `PyDataset`)."""
    if y is not None:
        return True
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        return isinstance(spec, tuple) and len(spec) >= 2 and spec[1] is not None
    if isinstance(data, (np.ndarray, list)) or tf.is_tensor(data):
        return False
    return None


def _example_shape(data):
    """The shape of a batch of `data` (a dataset, an array or an `(x, y)` tuple), or None."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        while isinstance(spec, (tuple, list)):
            spec = spec[0]
        if isinstance(spec, dict):
            return None
        return tuple(spec.shape)
    if isinstance(data, (tuple, list)) and data and hasattr(data[0], "shape"):
        return tuple(data[0].shape)
    if hasattr(data, "shape"):
        return tuple(data.shape)
    return None

"""The base of every keras-gon model: the one training step, metrics, checks and inference API."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.distribute import is_distributed, scale_loss_for_replicas, step_logs
from keras_gon.errors import InputError
from keras_gon.validation import check_choice, check_image_shape, check_positive_int

OUTER_TARGETS = ("input", "y")
KERAS_MODEL_OPTIONS = ("name", "dtype", "trainable", "autocast")
"""The `keras.Model` constructor options a keras-gon model passes on."""


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

    def __init__(self, image_shape=(32, 32, 1), latent_dim: int = 32, outer_loss="sse",
                 outer_target: str = "input", seed: int | None = None, **kwargs):
        unknown = sorted(set(kwargs) - set(KERAS_MODEL_OPTIONS))
        if unknown:
            from keras_gon.registry import OPTION_GROUPS

            origin = [name for name in unknown if name in OPTION_GROUPS["origin"]]
            reason = f"{type(self).__name__} has no origin gradient: it" if origin else (
                type(self).__name__)
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
        return {"loss": self.outer_loss(target, reconstructions), "reconstructions": reconstructions}

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

    def check_training_data(self, x, y=None, validation_data=None) -> None:
        """Refuses data `fit` cannot train on, before Keras traces a step."""
        self.check_data_shapes(x, validation_data)

    def training_callbacks(self) -> list:
        """Callbacks `fit` adds unless given (e.g. the implicit GON's latent statistics)."""
        return []

    def default_jit_compile(self) -> bool:
        """`compile(jit_compile=None)`: XLA on one device (off under a strategy, as Keras)."""
        return not is_distributed(self)

    def output_images(self, outputs):
        """Images in [0, 1] from the decoder's raw output (e.g. without a likelihood's scale)."""
        return outputs

    # --- the training step (written once) ------------------------------------------------

    def train_step(self, data):
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
            targets = tf.cast(terms["targets"], predictions.dtype) if (
                terms["targets"].dtype.is_floating) else terms["targets"]
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
        off on CPU.
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

    def check_data_shapes(self, *datasets) -> None:
        """Refuses data whose example shape is not the model's, with the shapes in the message."""
        expected = tuple(self.image_shape)
        for data in datasets:
            shape = _example_shape(data)
            if shape is None:
                continue
            found = shape[1:]
            if len(found) != len(expected) or any(
                f is not None and f != e for f, e in zip(found, expected)
            ):
                raise InputError(f"data has shape {shape}, the model expects (batch, *{expected})")

    def fit(self, x=None, y=None, *args, callbacks=None, validation_data=None, **kwargs):
        """`keras.Model.fit` after `check_training_data`, stopping cleanly on a non-finite loss."""
        self.check_training_data(x, y, validation_data)
        callbacks = list(callbacks or [])
        for callback in (keras.callbacks.TerminateOnNaN(), *self.training_callbacks()):
            if not any(isinstance(c, type(callback)) for c in callbacks):
                callbacks.append(callback)
        return super().fit(x, y, *args, callbacks=callbacks, validation_data=validation_data,
                           **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        """`keras.Model.evaluate`, refusing data of the wrong shape with a clear error."""
        self.check_data_shapes(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` (reconstructions), refusing data of the wrong shape."""
        self.check_data_shapes(x)
        return super().predict(x, *args, **kwargs)

    def call(self, inputs, training=None):
        """Reconstructions F(z(x)) of a batch (what `predict` returns)."""
        latents, _ = self.find_latents(inputs, training=bool(training))
        return self.decode_latents(latents, training=bool(training))

    # --- data ---------------------------------------------------------------------------

    @property
    def latent_dtype(self) -> str:
        """dtype of latents and data: the variables' dtype (float32 under mixed precision)."""
        return self.dtype_policy.variable_dtype

    def unpack_images(self, data):
        """The images of a batch (x of `(x, y, sample_weight)`), shape-checked, in `latent_dtype`."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._check_batch_shape(x, "batches")
        return tf.cast(x, self.latent_dtype)

    def unpack_target(self, data, images):
        """The outer loss's target: the images, or `y` of `(source, target)` pairs (§3.5)."""
        if self.outer_target == "input":
            return images
        _, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise InputError("outer_target='y' needs (source, target) pairs, the data has no target")
        self._check_batch_shape(y, "targets")
        return tf.cast(y, self.latent_dtype)

    def unpack_integers(self, data, message: str):
        """The integer `y` of `(x, y)` batches, flat and int32 (labels, example indices)."""
        _, values, _ = keras.utils.unpack_x_y_sample_weight(data)
        if values is None or not values.dtype.is_integer:
            raise InputError(message)
        return tf.cast(tf.reshape(values, (-1,)), "int32")

    def _check_batch_shape(self, x, what: str) -> None:
        expected = tuple(self.image_shape)
        if tuple(x.shape[1:]) != expected and None not in x.shape[1:]:
            raise InputError(
                f"{what} have shape {tuple(x.shape)}, the model expects (batch, *{expected})"
            )

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
        """`images` as a float32 tensor in [0, 1] of the model's shape, or a clear error."""
        from keras_gon.data.arrays import check_images

        expected = tuple(self.image_shape)
        array = check_images(images, name="images", channels=expected[-1])
        if array.shape[1:] != expected:
            raise InputError(
                f"images have shape {array.shape}, the model expects (batch, *{expected})"
            )
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
        return self.inference_function("encode", lambda x: self.encode_latents(x))(x)

    def decode(self, latents):
        """F(latents) at inference: images (batch, H, W, C) in [0, 1]."""
        z = self.check_latents(latents)
        return self.inference_function("decode", lambda z: self.decode_latents(z))(z)

    def reconstruct(self, images):
        """F(z(x)) at inference: encode then decode in one graph."""
        x = self.check_images(images)
        return self.inference_function("reconstruct", lambda x: self(x, training=False))(x)

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

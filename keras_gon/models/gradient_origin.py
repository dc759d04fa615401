"""The origin-gradient core shared by every GON variant (paper §3, eqs. 3-4)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.distribute import is_distributed, scale_loss_for_replicas, step_logs
from keras_gon.errors import InputError

INNER_BATCH_REDUCTIONS = ("sum", "mean")
OUTER_TARGETS = ("input", "y")


@keras.saving.register_keras_serializable(package="keras_gon")
class GradientOriginModel(keras.Model):
    """A `keras.Model` whose latents are negative loss gradients at the origin.

    For data x, the latent is found from the origin z0 (zeros, eq. 3):

        z = z0 - step_size * ∇z0 L_inner(x, F(z0)),

    repeated `num_steps` times from the new point, and F is trained on the
    outer loss L_outer(x, F(z)) through that gradient (eq. 4): the outer
    `tf.GradientTape` records the inner tape's gradient computation, so the
    weight update includes the second-order terms.

    Subclasses provide the decoder F by implementing
    `decode_latents(latents, training, inner_pass)`, and may override
    `inner_losses` / `outer_losses` (e.g. the variational GON's ELBO).

    The inner loss is summed over the batch, so each example's latent is the
    gradient of its own loss: the same image gets the same latent whatever
    batch it arrives in. `inner_batch_reduction="mean"` reproduces the
    authors' code, where z scales as 1/batch size.

    Args:
        latent_dim: size of the latent vector.
        inner_loss: per-example loss at the origin ("sse", "mse", "bce" or a
            callable `(y_true, y_pred) -> (batch,)`).
        outer_loss: per-example loss of the reconstruction from z; its batch
            mean is the training loss.
        num_steps: gradient steps from the origin (>= 1); all of them are
            differentiated through and optimised jointly.
        step_size: step size of each gradient step (1 for the paper's
            one-step GON, 0.1 for its 10-step one).
        detach: stop gradients through z (the paper's "detach" baseline).
        origin_stddev: in training, z0 ~ N(0, origin_stddev²) instead of zeros
            (appendix C); encoding at inference always starts at zeros.
        add_origin: whether the first step keeps z0: z = z0 - ∇z0 L (True,
            appendix C's variant (b)) or z = -∇z0 L (False, variant (a), the
            paper's main one in fig. 11a). The same when z0 = 0.
        inner_batch_reduction: "sum" (per-example latents) or "mean".
        seed: seed of the random origin.
        outer_target: what the outer loss compares F(z) with: "input" (the
            data itself, an autoencoder) or "y" (the second item of
            `(source, target)` pairs: modality conversion, §3.5, where z is
            the origin gradient of the inner loss on the source).
    """

    def __init__(
        self,
        latent_dim: int = 32,
        inner_loss: str = "sse",
        outer_loss: str = "sse",
        num_steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        origin_stddev: float = 0.0,
        inner_batch_reduction: str = "sum",
        seed: int | None = None,
        outer_target: str = "input",
        add_origin: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if outer_target not in OUTER_TARGETS:
            raise InputError(
                f"outer_target must be one of {OUTER_TARGETS}, got {outer_target!r}"
            )
        if int(latent_dim) < 1:
            raise InputError(f"latent_dim must be a positive integer, got {latent_dim}")
        if int(num_steps) < 1:
            raise InputError(f"num_steps must be >= 1, got {num_steps}")
        if not float(step_size) > 0:
            raise InputError(f"step_size must be > 0, got {step_size}")
        if not float(origin_stddev) >= 0:
            raise InputError(f"origin_stddev must be >= 0, got {origin_stddev}")
        if inner_batch_reduction not in INNER_BATCH_REDUCTIONS:
            raise InputError(
                f"inner_batch_reduction must be one of {INNER_BATCH_REDUCTIONS}, "
                f"got {inner_batch_reduction!r}"
            )
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.inner_loss = gon_losses.deserialize(inner_loss)
        self.outer_loss = gon_losses.deserialize(outer_loss)
        self.num_steps = int(num_steps)
        self.step_size = float(step_size)
        self.detach = bool(detach)
        self.origin_stddev = float(origin_stddev)
        self.inner_batch_reduction = inner_batch_reduction
        self.seed = seed
        self.outer_target = outer_target
        self.add_origin = bool(add_origin)

        # === State ===
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.inner_loss_tracker = keras.metrics.Mean(name="inner_loss")
        self.term_trackers = [keras.metrics.Mean(name=name) for name in self.metric_terms]
        self._inference_functions = {}

    # --- what subclasses provide -------------------------------------------

    metric_terms: tuple[str, ...] = ()
    """Names of extra per-example terms that `outer_losses` returns (e.g. the
    VariationalGON's "kl_loss"); fit/evaluate report the mean of each."""

    def decode_latents(self, latents, training=False, inner_pass: bool = False):
        """F(latents): the decoder's output that the losses compare with the data."""
        raise NotImplementedError(f"{type(self).__name__} must implement decode_latents")

    @property
    def input_spec_shape(self) -> tuple[int, ...]:
        """Shape of one example (without the batch axis), for input checks."""
        raise NotImplementedError

    def inner_losses(self, data, latents, training=False):
        """Per-example inner loss L_inner(x, F(z)) at a point z of the inner steps."""
        return self.inner_loss(data, self.decode_latents(latents, training=training, inner_pass=True))

    def outer_losses(self, data, latents, training=False):
        """Per-example outer loss L_outer(x, F(z)) at the final latent.

        Or a dict of per-example tensors: the loss under "loss", and one
        entry for each of `metric_terms`.
        """
        return self.outer_loss(data, self.decode_latents(latents, training=training, inner_pass=False))

    # --- the origin gradient --------------------------------------------------

    def origin(self, batch_size, training=False):
        """z0: zeros, or N(0, origin_stddev²) samples in training (appendix C)."""
        shape = (batch_size, self.latent_dim)
        dtype = self.latent_dtype
        if training and self.origin_stddev > 0:
            return keras.random.normal(
                shape, stddev=self.origin_stddev, seed=self.seed_generator, dtype=dtype
            )
        return tf.zeros(shape, dtype=dtype)

    @property
    def latent_dtype(self) -> str:
        """dtype of latents and data: the variables' dtype (float32 under mixed precision)."""
        return self.dtype_policy.variable_dtype

    def origin_latents(self, data, training=False):
        """z = z0 - step_size ∇z0 L_inner (eq. 3), `num_steps` times.

        Returns the latents and the per-example inner losses at the origin.
        Called inside an outer `tf.GradientTape`, the gradient computation is
        recorded, so the outer loss is differentiated through it (eq. 4).
        """
        latents = self.origin(tf.shape(data)[0], training=training)
        origin_loss = None
        first_step = 0
        if self._can_share_origin(training):
            gradient, origin_loss = self._shared_origin_gradient(data, training)
            latents = latents - self.step_size * tf.cast(gradient, latents.dtype)
            first_step = 1
        for step in range(first_step, self.num_steps):  # unrolled: num_steps is a Python int
            with tf.GradientTape() as tape:
                tape.watch(latents)
                per_example = self.inner_losses(data, latents, training=training)
                total = self._reduce_inner(per_example)
            gradient = tape.gradient(
                total, latents, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            if origin_loss is None:
                origin_loss = per_example
            start = latents if (step > 0 or self.add_origin) else tf.zeros_like(latents)
            latents = start - self.step_size * tf.cast(gradient, latents.dtype)
        if self.detach:
            latents = tf.stop_gradient(latents)
        return latents, origin_loss

    def _reduce_inner(self, per_example):
        """The inner loss differentiated for the latents: summed (per-example latents) or averaged."""
        if self.inner_batch_reduction == "sum":
            return tf.reduce_sum(per_example)
        return tf.reduce_mean(per_example)

    def origin_is_shared(self, training: bool) -> bool:
        """True when F(z0 = 0) and its Jacobian are the same for every example.

        Then the first inner step evaluates F and its Jacobian once, at a
        single origin (`linearize_decoder`), instead of a forward and
        backward pass of the whole batch there: the same latents, fewer
        FLOPs (`_shared_origin_gradient`). Subclasses whose decoder treats
        examples independently at the origin (no batch statistics, no noise)
        and implement `linearize_decoder` return True; the base class does
        not know its decoder, so returns False.
        """
        return False

    def linearize_decoder(self, latent, training=False):
        """`(F(latent), J)` at one latent (1, latent_dim) of the inner pass.

        J is (latent_dim, *output_shape): row k is ∂F/∂z_k at `latent`.
        Provided by subclasses whose `origin_is_shared` can be True.
        """
        raise NotImplementedError(f"{type(self).__name__} does not linearise its decoder")

    def shares_origin_in_training(self) -> bool:
        """Whether training steps evaluate F once at a shared origin (see `origin_is_shared`)."""
        return self._can_share_origin(True)

    def _can_share_origin(self, training: bool) -> bool:
        return bool(
            getattr(self, "share_origin", True)
            and self.origin_is_shared(training)
            and not (training and self.origin_stddev > 0)  # a random z0 differs per example
            # the shared pass splits inner_losses into linearize_decoder and inner_loss
            and type(self).inner_losses is GradientOriginModel.inner_losses
        )

    def _shared_origin_gradient(self, data, training):
        """∇z0 L_inner(x, F(z0)) per example, F linearised once at a single origin (eq. 3).

        With y0 = F(0) the same for every example, the gradient for example
        i is J^T r_i, J the Jacobian of F at 0 and r_i = ∂L_inner(x_i, y)/∂y
        at y0: one matrix product (batch, D) x (D, latent_dim) once J is
        known, instead of a forward and a backward pass of the whole batch at
        the origin. Every op is recorded by an enclosing outer tape, so the
        outer loss is differentiated through it as usual (eq. 4).
        Returns the gradients (batch, latent_dim) and the per-example inner losses.
        """
        origin = tf.zeros((1, self.latent_dim), dtype=self.latent_dtype)
        single, jacobian = self.linearize_decoder(origin, training=training)
        batch_size = tf.shape(data)[0]
        outputs = tf.broadcast_to(single, tf.concat([[batch_size], tf.shape(single)[1:]], axis=0))
        with tf.GradientTape() as loss_tape:
            loss_tape.watch(outputs)
            per_example = self.inner_loss(data, outputs)
            total = self._reduce_inner(per_example)
        output_gradients = loss_tape.gradient(total, outputs)
        gradients = tf.matmul(
            tf.reshape(output_gradients, (batch_size, -1)),
            tf.reshape(tf.cast(jacobian, output_gradients.dtype), (self.latent_dim, -1)),
            transpose_b=True,
        )
        return gradients, per_example

    # --- Keras training hooks ---------------------------------------------------

    def _unpack_batch(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        expected = tuple(self.input_spec_shape)
        if tuple(x.shape[1:]) != expected and None not in x.shape[1:]:
            raise InputError(
                f"batches have shape {tuple(x.shape)}, the model expects (batch, *{expected})"
            )
        return tf.cast(x, self.latent_dtype)

    def _unpack_target(self, data, x):
        """The outer loss's target: `x`, or `y` of `(source, target)` pairs (§3.5)."""
        if self.outer_target == "input":
            return x
        _, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise InputError("outer_target='y' needs (source, target) pairs, the data has no target")
        expected = tuple(self.input_spec_shape)
        if tuple(y.shape[1:]) != expected and None not in y.shape[1:]:
            raise InputError(
                f"targets have shape {tuple(y.shape)}, the model expects (batch, *{expected})"
            )
        return tf.cast(y, self.latent_dtype)

    def train_step(self, data):
        x = self._unpack_batch(data)
        target = self._unpack_target(data, x)
        with tf.GradientTape() as tape:
            latents, inner_losses = self.origin_latents(x, training=True)
            outer_losses = self.outer_losses(target, latents, training=True)
            per_example = outer_losses["loss"] if isinstance(outer_losses, dict) else outer_losses
            loss = tf.reduce_mean(per_example)
            if self.losses:
                loss = loss + tf.add_n([tf.cast(l, loss.dtype) for l in self.losses])
            # Under a tf.distribute strategy the optimizer sums the replicas'
            # gradients: differentiate mean / replicas (as Keras's losses do).
            # Only this outer loss is scaled for mixed precision, not the inner one.
            scaled_loss = self.optimizer.scale_loss(scale_loss_for_replicas(loss))
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(inner_losses, outer_losses)

    def encode_latents(self, images, training=False):
        """Graph-level encoder: the latents of a batch of images (no input checks)."""
        return self.origin_latents(images, training=training)[0]

    def _update_metrics(self, inner_losses, outer_losses):
        # Per-example values, so the epoch mean weighs every example equally
        # (a partial last batch counts for its size, not as a full batch).
        terms = outer_losses if isinstance(outer_losses, dict) else {"loss": outer_losses}
        self.loss_tracker.update_state(terms["loss"])
        self.inner_loss_tracker.update_state(inner_losses)
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name])
        return step_logs({m.name: m.result() for m in self.metrics})

    def test_step(self, data):
        x = self._unpack_batch(data)
        target = self._unpack_target(data, x)
        latents, inner_losses = self.origin_latents(x, training=False)
        return self._update_metrics(inner_losses, self.outer_losses(target, latents, training=False))

    @property
    def metrics(self):
        return [self.loss_tracker, self.inner_loss_tracker, *self.term_trackers]

    def compile(self, optimizer="adam", *, loss=None, jit_compile=None, **kwargs):
        """As `keras.Model.compile`, with XLA on by default on one device.

        `jit_compile=None` chooses what was measured fastest: False when
        training steps share the origin (`shares_origin_in_training`: F and
        its Jacobian evaluated once at z0 for the whole batch; within ~5 %
        of XLA's speed on CPU, without its compilation), otherwise
        True, not "auto": Keras's "auto" turns XLA off on CPU, where the
        compiled GON step with a batched origin is faster. Under a `tf.distribute` strategy
        it means False, as Keras's "auto" does (an XLA cluster cannot reach
        another replica's variables). The losses are
        constructor arguments (`inner_loss`, `outer_loss`), not `loss`.
        """
        if loss is not None:
            raise InputError(
                f"{type(self).__name__}.compile() takes no loss: set inner_loss/outer_loss "
                "in the constructor"
            )
        if jit_compile is None:
            # Measured on CPU (benchmarks/RESULTS.md): XLA is clearly faster
            # for the batched origin; for the shared one it gains ~5 % per
            # step but costs ~4 s of compilation per model.
            jit_compile = not is_distributed(self) and not self.shares_origin_in_training()
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded model (Keras skips this for a custom `compile`)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _check_data_argument(self, x, validation_data=None):
        """Refuses data whose example shape is not the model's, before Keras traces a step.

        (A step traced once is retraced with relaxed shapes, so a check at
        trace time alone would not see a later wrong shape.)
        """
        for data in (x, validation_data):
            if isinstance(data, tf.data.Dataset):
                spec = data.element_spec
                while isinstance(spec, (tuple, list)):
                    spec = spec[0]
                if isinstance(spec, dict):
                    continue
                shape = tuple(spec.shape)
            elif isinstance(data, (tuple, list)) and data and hasattr(data[0], "shape"):
                shape = tuple(data[0].shape)
            elif hasattr(data, "shape"):
                shape = tuple(data.shape)
            else:
                continue
            expected = tuple(self.input_spec_shape)
            found = shape[1:]
            if len(found) != len(expected) or any(
                f is not None and f != e for f, e in zip(found, expected)
            ):
                raise InputError(
                    f"data has shape {shape}, the model expects (batch, *{expected})"
                )

    def fit(self, x=None, *args, callbacks=None, validation_data=None, **kwargs):
        """`keras.Model.fit`, stopping cleanly on a non-finite loss (`TerminateOnNaN`)."""
        self._check_data_argument(x, validation_data)
        callbacks = list(callbacks or [])
        if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks):
            callbacks.append(keras.callbacks.TerminateOnNaN())
        return super().fit(
            x, *args, callbacks=callbacks, validation_data=validation_data, **kwargs
        )

    def evaluate(self, x=None, *args, **kwargs):
        """`keras.Model.evaluate`, refusing data of the wrong shape with a clear error."""
        self._check_data_argument(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` (reconstructions), refusing data of the wrong shape."""
        self._check_data_argument(x)
        return super().predict(x, *args, **kwargs)

    def call(self, inputs, training=None):
        """Reconstruction F(z(x)) of a batch (what `predict` returns)."""
        latents, _ = self.origin_latents(inputs, training=bool(training))
        return self.decode_latents(latents, training=bool(training))

    # --- inference API -------------------------------------------------------------

    def reset_inference_functions(self) -> None:
        """Drops the traced `encode`/`decode`/... functions (traced again on next use)."""
        self._inference_functions.clear()

    def _inference_function(self, name, fn):
        if name not in self._inference_functions:
            self._inference_functions[name] = tf.function(fn, reduce_retracing=True)
        return self._inference_functions[name]

    def _check_inputs(self, images):
        from keras_gon.data.arrays import check_images

        expected = tuple(self.input_spec_shape)
        array = check_images(images, name="images", channels=expected[-1])
        if array.shape[1:] != expected:
            raise InputError(
                f"images have shape {array.shape}, the model expects (batch, *{expected})"
            )
        return tf.convert_to_tensor(array, dtype=self.latent_dtype)

    def _check_latents(self, latents):
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
        """Latents -∇z0 L(x, F(z0)) of `images` at inference (eq. 3): (batch, latent_dim).

        `images` is (batch, H, W, C), float in [0, 1] or uint8; the
        normalisation runs in inference mode and no variable changes.
        """
        x = self._check_inputs(images)
        fn = self._inference_function("encode", lambda x: self.encode_latents(x))
        return fn(x)

    def decode(self, latents):
        """F(latents) at inference: images (batch, H, W, C) in [0, 1]."""
        z = self._check_latents(latents)
        fn = self._inference_function(
            "decode", lambda z: self.decode_latents(z, training=False)
        )
        return fn(z)

    def reconstruct(self, images):
        """F(z(x)) at inference: encode then decode in one graph."""
        x = self._check_inputs(images)
        fn = self._inference_function("reconstruct", lambda x: self(x, training=False))
        return fn(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "inner_loss": gon_losses.serialize(self.inner_loss),
                "outer_loss": gon_losses.serialize(self.outer_loss),
                "num_steps": self.num_steps,
                "step_size": self.step_size,
                "detach": self.detach,
                "origin_stddev": self.origin_stddev,
                "inner_batch_reduction": self.inner_batch_reduction,
                "seed": self.seed,
                "outer_target": self.outer_target,
                "add_origin": self.add_origin,
            }
        )
        return config

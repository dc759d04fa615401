"""Keras callbacks used by keras-gon's command line and benchmarks."""

from __future__ import annotations

import collections
import time

import keras
import numpy as np


class StepTimer(keras.callbacks.Callback):
    """Measures training steps per second after the first `skip` steps.

    The first steps include tracing and XLA compilation; excluding them gives
    the steady-state speed. `seconds` is the wall time of the whole run,
    `cpu_seconds` the CPU time the process spent over it (every thread's: the
    compute the run cost, whatever else shares the machine or pauses it).
    """

    def __init__(self, skip: int = 5):
        super().__init__()
        self.skip = int(skip)
        self.steps = 0
        self._start = None
        self._timed_start = None
        self._end = None
        self._cpu_start = None
        self._cpu_end = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.skip:
            self._timed_start = time.perf_counter()
        self._end = time.perf_counter()
        self._cpu_end = time.process_time()

    @property
    def cpu_seconds(self) -> float:
        """CPU time of the process (all threads) from the start of training to the last step."""
        return (self._cpu_end or time.process_time()) - (self._cpu_start or time.process_time())

    @property
    def seconds(self) -> float:
        """Wall time from the start of training to the last step."""
        return (self._end or time.perf_counter()) - (self._start or time.perf_counter())

    @property
    def steps_per_second(self) -> float:
        """Steps per second after the first `skip` steps (all steps if there were fewer)."""
        if self._timed_start is None or self.steps <= self.skip:
            return self.steps / self.seconds if self.seconds > 0 else float("nan")
        return (self.steps - self.skip) / (self._end - self._timed_start)


class ReconstructionImages(keras.callbacks.Callback):
    """Writes originals and reconstructions of fixed images to TensorBoard each epoch."""

    def __init__(self, images: np.ndarray, log_dir: str, max_outputs: int = 8):
        super().__init__()
        self.images = np.asarray(images)[:max_outputs]
        self.log_dir = str(log_dir)
        self.max_outputs = max_outputs
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        reconstructions = self.model.reconstruct(self.images)
        with self._writer.as_default():
            tf.summary.image("originals", self.images, step=epoch, max_outputs=self.max_outputs)
            tf.summary.image(
                "reconstructions", reconstructions, step=epoch, max_outputs=self.max_outputs
            )
        self._writer.flush()


class KLWarmup(keras.callbacks.Callback):
    """Raises β (the KL weight) linearly from 0 to `target` over `warmup_steps` steps.

    For models with `set_kl_weight` (`keras_gon.VariationalGON`,
    `keras_gon.VAE`): before optimizer step s, β = target * min(1, s /
    warmup_steps), s counted by the optimizer, so a resumed fit continues the
    schedule. `target` defaults to the model's `kl_weight`.
    """

    def __init__(self, warmup_steps: int, target: float | None = None):
        super().__init__()
        from keras_gon.errors import InputError

        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise InputError(f"warmup_steps must be a positive integer, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.target = target
        self._step = 0

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "set_kl_weight"):
            from keras_gon.errors import InputError

            raise InputError(f"KLWarmup needs a variational model, not {type(self.model).__name__}")
        if self.target is None:
            self.target = self.model.kl_weight
        self._step = int(self.model.optimizer.iterations)

    def on_train_batch_begin(self, batch, logs=None):
        if self._step <= self.warmup_steps:
            self.model.set_kl_weight(self.target * min(1.0, self._step / self.warmup_steps))
        self._step += 1


class LatentStatistics(keras.callbacks.Callback):
    """Mean and covariance of the latents of the last `window` training steps (appendix D).

    The model (e.g. `keras_gon.ImplicitGON`) records the moments of each
    training step's latents in `step_latent_count` / `step_latent_mean` /
    `step_latent_scatter`; this callback pools the last `window` steps (the
    authors keep the latents of the last 100 batches) and, at the end of
    each epoch and of training, stores the pooled mean and covariance in the
    model with `set_latent_statistics`, where they are saved with the model
    and `model.sample(n)` draws from them. With `steps_per_execution` > 1
    only the last step of each execution is seen; under a `tf.distribute`
    strategy the model gathers every replica's latents, so a step's moments
    are those of the whole global batch.
    """

    def __init__(self, window: int = 100):
        super().__init__()
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            from keras_gon.errors import InputError

            raise InputError(f"window must be a positive integer, got {window!r}")
        self.window = window
        self._steps = collections.deque(maxlen=window)

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "step_latent_scatter"):
            from keras_gon.errors import InputError

            raise InputError(
                f"LatentStatistics needs a model that records its latents "
                f"(e.g. ImplicitGON), not {type(self.model).__name__}"
            )
        self._steps.clear()

    def on_train_batch_end(self, batch, logs=None):
        count = float(self.model.step_latent_count.numpy())
        if count > 0:
            self._steps.append(
                (
                    count,
                    self.model.step_latent_mean.numpy().astype("float64"),
                    self.model.step_latent_scatter.numpy().astype("float64"),
                )
            )

    def statistics(self):
        """(mean, covariance, count) pooled over the window (Chan et al.'s parallel formula)."""
        counts = np.array([c for c, _, _ in self._steps])
        means = np.stack([m for _, m, _ in self._steps])
        total = counts.sum()
        mean = (counts[:, None] * means).sum(0) / total
        deviations = means - mean
        scatter = sum(s for _, _, s in self._steps) + (
            counts[:, None, None] * deviations[:, :, None] * deviations[:, None, :]
        ).sum(0)
        return mean, scatter / max(total - 1.0, 1.0), int(total)

    def _store(self):
        if self._steps and sum(c for c, _, _ in self._steps) >= 2:
            self.model.set_latent_statistics(*self.statistics())

    def on_epoch_end(self, epoch, logs=None):
        self._store()

    def on_train_end(self, logs=None):
        self._store()


class EpochEvaluation(keras.callbacks.Callback):
    """Losses of the fixed model on fixed training and held-out data after each epoch.

    Keras's `loss` is the running mean of the epoch's training steps, taken
    in training mode while the weights move; the generalisation gap (paper
    figs. 2c and 16) needs the same evaluation of the same weights on both
    sets. After every epoch this evaluates the model (`model.evaluate`, in
    inference mode) on `train_data` and `held_out_data` and adds each metric
    to the epoch's logs as `train_eval_<name>` and `held_out_<name>`; the
    values are also kept in `history` (a list of dicts, one per epoch).

    `statistics` ("moving" or "batch") is how batch norms are evaluated
    (`keras_gon.layers.inference_statistics`); None leaves the model's own.
    """

    def __init__(self, train_data, held_out_data, statistics: str | None = None):
        super().__init__()
        self.train_data = train_data
        self.held_out_data = held_out_data
        self.statistics = statistics
        self.history: list[dict] = []

    def evaluate(self) -> dict:
        """`{"train_eval_<metric>": ..., "held_out_<metric>": ...}` of the current weights."""
        import contextlib

        from keras_gon.layers.batch_normalization import inference_statistics

        scope = (
            contextlib.nullcontext()
            if self.statistics is None
            else inference_statistics(self.model, self.statistics)
        )
        results = {}
        with scope:
            for prefix, data in (("train_eval", self.train_data), ("held_out", self.held_out_data)):
                values = self.model.evaluate(data, verbose=0, return_dict=True)
                results.update({f"{prefix}_{name}": float(v) for name, v in values.items()})
        return results

    def on_epoch_end(self, epoch, logs=None):
        results = self.evaluate()
        self.history.append({"epoch": epoch + 1, **results})
        if logs is not None:
            logs.update(results)


class BatchLosses(keras.callbacks.Callback):
    """Collects each training step's own loss from Keras's running epoch mean (in `losses`)."""

    def __init__(self):
        super().__init__()
        self.losses: list[float] = []
        self._previous = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        # A running mean over equal batches: batch k's value is k*m_k - (k-1)*m_{k-1}.
        self.losses.append((batch + 1) * mean - batch * self._previous)
        self._previous = mean


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, keeping the last finite weights.

    Like `keras.callbacks.TerminateOnNaN`, without leaving NaN weights behind:
    a keras-gon training step whose loss is not finite applies no update
    (`LatentModel.train_step`), so the trainable weights are those of the last
    finite step; state updated during the forward pass (batch-norm moving
    statistics) is put back from the start of the epoch where it became
    non-finite. A `RuntimeWarning` names the step and the loss, and
    `stopped_at_step` keeps the step (None while training is finite).
    """

    def __init__(self):
        super().__init__()
        self.stopped_at_step: int | None = None
        self._state = []
        self._steps = 0

    def on_train_begin(self, logs=None):
        self.stopped_at_step = None
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._state = [np.array(v) for v in self.model.non_trainable_variables]

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(float(loss)):
            return
        import warnings

        for variable, value in zip(self.model.non_trainable_variables, self._state):
            if not np.all(np.isfinite(np.asarray(variable))):
                variable.assign(value)
        self.stopped_at_step = self._steps
        self.model.stop_training = True
        warnings.warn(
            f"training stopped at step {self._steps}: the loss became {float(loss)}; the model "
            "keeps the weights of the last finite step (check the data for NaN or extreme "
            "values, or lower the learning rate)",
            RuntimeWarning,
            stacklevel=2,
        )

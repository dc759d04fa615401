"""Keras callbacks used by keras-gon's command line and benchmarks."""

from __future__ import annotations

import time

import keras
import numpy as np


class StepTimer(keras.callbacks.Callback):
    """Measures training steps per second after the first `skip` steps.

    The first steps include tracing and XLA compilation; excluding them gives
    the steady-state speed. `seconds` is the wall time of the whole run.
    """

    def __init__(self, skip: int = 5):
        super().__init__()
        self.skip = int(skip)
        self.steps = 0
        self._start = None
        self._timed_start = None
        self._end = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.skip:
            self._timed_start = time.perf_counter()
        self._end = time.perf_counter()

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

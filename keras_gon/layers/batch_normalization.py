"""Batch normalisation with exact higher-order gradients."""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from keras_gon.errors import InputError


def exact_moments(x, axes, keepdims: bool = True):
    """Mean and biased variance of `x` over `axes`, differentiable to any order.

    `keras.ops.moments` on TensorFlow computes the variance with
    `stop_gradient(mean)`: exact for first derivatives, wrong for the
    gradient-of-a-gradient that a GON trains through. Here the
    variance is the mean of squared deviations, with no gradient stopped.
    """
    mean = ops.mean(x, axis=axes, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)
    if not keepdims:
        mean = ops.squeeze(mean, axis=axes)
        variance = ops.squeeze(variance, axis=axes)
    return mean, variance


@keras.saving.register_keras_serializable(package="keras_gon")
class BatchNormalization(keras.layers.Layer):
    """Batch normalisation whose second derivatives are exact.

    Behaves like `keras.layers.BatchNormalization` (batch statistics in
    training, moving statistics at inference) with three differences that a
    Gradient Origin Network needs:

    - the batch variance keeps its gradient through the mean, so the
      outer-loss gradient, which differentiates through the origin gradient
      (paper eq. 8), is exact;
    - `call(..., update_moving_statistics=False)` uses batch statistics
      without touching the moving statistics, so a pass can be kept out of
      them (e.g. the degenerate pass at the origin z0 = 0, where every
      example is identical);
    - the defaults follow PyTorch (`momentum=0.9`, i.e. PyTorch's 0.1, and
      `epsilon=1e-5`) and the moving variance is updated with the unbiased
      batch variance, as the authors' PyTorch code does;
    - `inference_statistics = "batch"` (an evaluation protocol, not saved in
      the config: see `keras_gon.layers.inference_statistics`) makes
      inference calls normalise with the batch's own statistics, without
      updating the moving ones: how the authors' scripts, which never call
      `.eval()`, compute every reported loss.

    Args:
        axis: the feature axis (channels-last: -1).
        momentum: momentum of the moving statistics.
        epsilon: added to the variance before the square root.
        center: learn an offset `beta`.
        scale: learn a scale `gamma`.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.supports_masking = False
        # === State === (an evaluation protocol, deliberately not in the config)
        self.inference_statistics = "moving"

    def build(self, input_shape):
        axis = self.axis % len(input_shape)
        features = input_shape[axis]
        if features is None:
            raise ValueError(
                f"BatchNormalization needs a known size on axis {self.axis}; "
                f"got input shape {input_shape}."
            )
        self._reduction_axes = [i for i in range(len(input_shape)) if i != axis]
        self._broadcast_shape = [1] * len(input_shape)
        self._broadcast_shape[axis] = features
        shape = (features,)
        self.gamma = (
            self.add_weight(shape=shape, initializer="ones", name="gamma") if self.scale else None
        )
        self.beta = (
            self.add_weight(shape=shape, initializer="zeros", name="beta") if self.center else None
        )
        self.moving_mean = self.add_weight(
            shape=shape, initializer="zeros", trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape=shape, initializer="ones", trainable=False, name="moving_variance"
        )

    def uses_batch_statistics(self, training, moving: bool = False) -> bool:
        """Whether a call normalises with the batch's statistics (coupling its examples)."""
        if moving:
            return False
        if training and self.trainable:
            return True
        return self.inference_statistics == "batch"

    def call(
        self, inputs, training=None, update_moving_statistics: bool = True, moving: bool = False
    ):
        """Normalises `inputs`; `moving=True` uses the moving statistics whatever `training` is."""
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute_dtype)
        if self.uses_batch_statistics(training, moving):
            mean, variance = exact_moments(x, self._reduction_axes, keepdims=True)
            if update_moving_statistics and training and self.trainable:
                self._update_moving_statistics(
                    mean, variance, ops.cast(ops.size(x) // x.shape[self.axis], compute_dtype)
                )
        else:
            mean = ops.reshape(ops.cast(self.moving_mean, compute_dtype), self._broadcast_shape)
            variance = ops.reshape(
                ops.cast(self.moving_variance, compute_dtype), self._broadcast_shape
            )
        outputs = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * ops.reshape(
                ops.cast(self.gamma, compute_dtype), self._broadcast_shape
            )
        if self.beta is not None:
            outputs = outputs + ops.reshape(
                ops.cast(self.beta, compute_dtype), self._broadcast_shape
            )
        return ops.cast(outputs, self.compute_dtype)

    def _update_moving_statistics(self, mean, variance, count):
        """Moves the moving statistics towards a batch's: its mean and its unbiased
        variance over `count` values (the biased `variance` times count / (count - 1))."""
        unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        self.moving_mean.assign(
            self.moving_mean * self.momentum
            + ops.cast(ops.reshape(mean, (-1,)), self.moving_mean.dtype) * (1.0 - self.momentum)
        )
        self.moving_variance.assign(
            self.moving_variance * self.momentum
            + ops.cast(ops.reshape(unbiased, (-1,)), self.moving_variance.dtype)
            * (1.0 - self.momentum)
        )

    def linearize(self, inputs, tangents):
        """The output at inference for `inputs` and its derivatives along `tangents`.

        With moving statistics the layer is affine per channel, so each
        example is normalised on its own: `inputs` is one example `(1, ...)`,
        `tangents` `(K, ...)`; returns `(outputs, jvps)` (see
        `GroupNormalization.linearize`).
        """
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        outputs = self.call(inputs, training=False, moving=True)
        scale = ops.rsqrt(ops.cast(self.moving_variance, compute_dtype) + self.epsilon)
        if self.gamma is not None:
            scale = scale * ops.cast(self.gamma, compute_dtype)
        jvps = ops.cast(tangents, compute_dtype) * ops.reshape(scale, self._broadcast_shape)
        return outputs, ops.cast(jvps, self.compute_dtype)

    def linearize_transpose(self, inputs):
        """The output at inference for one example `inputs` `(1, ...)`, and the transpose
        of its Jacobian there: `(outputs, transpose)`, `transpose(cotangents)` mapping
        cotangents `(K, ...)` of the output to their vector-Jacobian products. With
        moving statistics the Jacobian is a per-channel scale, its own transpose."""
        outputs, scale = self.linearize(inputs, ops.ones_like(inputs[:1]))
        return outputs, lambda cotangents: ops.cast(cotangents, scale.dtype) * scale

    def linearize_batch(
        self,
        inputs,
        tangents,
        num_mean_tangents: int,
        batch_size,
        training=None,
        update_moving_statistics: bool = True,
    ):
        """Batch statistics at a batch of `batch_size` identical examples (a GON's origin
        z0 = 0), linearised: the output and its derivatives along two kinds of tangents.

        `inputs` is the one example `(1, H, W, C)`; `tangents` `(K, ...)` stacks
        `num_mean_tangents` directions that move every example alike (the batch mean
        of a perturbation), then directions that move examples apart (perturbations
        with zero batch mean). The statistics over identical examples are those of
        the one example, so: a common move shifts them, giving the per-example
        normalisation's derivative (t - mean(t) - x̂ mean(x̂ t)) / std; a move with
        zero batch mean leaves them unchanged, giving t / std (times gamma, both). The
        moving statistics are updated as `call` on the whole batch updates them (the
        unbiased variance counts `batch_size` * H * W values). Plain ops: an enclosing
        tape differentiates it to any order. Returns `(outputs, jvps)`.
        """
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute_dtype)
        t = ops.cast(tangents, compute_dtype)
        mean, variance = exact_moments(x, self._reduction_axes, keepdims=True)
        if update_moving_statistics and training and self.trainable:
            self._update_moving_statistics(
                mean,
                variance,
                ops.cast(batch_size, compute_dtype)
                * ops.cast(ops.size(x) // x.shape[self.axis], compute_dtype),
            )
        inverse_std = ops.rsqrt(variance + self.epsilon)
        normalized = (x - mean) * inverse_std
        scale = inverse_std
        outputs = normalized
        if self.gamma is not None:
            gamma = ops.reshape(ops.cast(self.gamma, compute_dtype), self._broadcast_shape)
            scale = scale * gamma
            outputs = outputs * gamma
        if self.beta is not None:
            outputs = outputs + ops.reshape(
                ops.cast(self.beta, compute_dtype), self._broadcast_shape
            )
        spatial = [axis for axis in self._reduction_axes if axis != 0]
        common, apart = t[:num_mean_tangents], t[num_mean_tangents:]
        common = (
            common
            - ops.mean(common, axis=spatial, keepdims=True)
            - normalized * ops.mean(normalized * common, axis=spatial, keepdims=True)
        )
        jvps = ops.concatenate([common, apart], axis=0) * scale
        return ops.cast(outputs, self.compute_dtype), ops.cast(jvps, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
            }
        )
        return config


INFERENCE_STATISTICS = ("moving", "batch")
"""How `BatchNormalization` normalises at inference (see `inference_statistics`)."""


def batch_normalization_layers(model: keras.layers.Layer) -> list:
    """Every `keras_gon.layers.BatchNormalization` inside `model` (recursively)."""
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, BatchNormalization)
    ]


@contextlib.contextmanager
def inference_statistics(model: keras.layers.Layer, statistics: str = "batch"):
    """Evaluates `model`'s batch norms with `statistics` ("batch" or "moving") inside the block.

    `"batch"` is how the authors' code evaluates (it never switches BatchNorm
    to evaluation mode): every batch is normalised with its own statistics,
    so results depend on the batch size and composition, and a GON's origin
    pass divides by sqrt(epsilon) as in training. `"moving"` is Keras's
    inference. Nothing is saved with the model: exports and `model.save`
    always use the moving statistics (a batch-independent encoder). The
    model's compiled evaluate/predict functions are dropped on entry and exit
    so they are traced with the protocol in force.
    """
    if statistics not in INFERENCE_STATISTICS:
        raise InputError(
            f"unknown batch-norm statistics {statistics!r}: expected one of {INFERENCE_STATISTICS}"
        )
    layers = batch_normalization_layers(model)
    previous = [layer.inference_statistics for layer in layers]
    _reset_functions(model)
    try:
        for layer in layers:
            layer.inference_statistics = statistics
        yield model
    finally:
        for layer, value in zip(layers, previous):
            layer.inference_statistics = value
        _reset_functions(model)


def _reset_functions(model) -> None:
    """Drops traced functions so the next call traces with the current statistics."""
    for name in ("test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)
    if hasattr(model, "reset_inference_functions"):
        model.reset_inference_functions()

"""Group (and layer) normalisation with exact higher-order gradients."""

from __future__ import annotations

import keras
from keras import ops

from keras_gon.layers.batch_normalization import exact_moments


@keras.saving.register_keras_serializable(package="keras_gon")
class GroupNormalization(keras.layers.Layer):
    """Per-example normalisation over groups of channels (channels-last).

    Statistics are computed per example over the spatial axes and the
    channels of each group, so an example's output never depends on the rest
    of its batch, in training and at inference alike. `groups=1` is layer
    normalisation over (H, W, C); `groups=C` is instance normalisation. The
    variance keeps its gradient through the mean, so second derivatives are
    exact (see `BatchNormalization`).

    Args:
        groups: number of channel groups; must divide the channel count.
        epsilon: added to the variance before the square root.
        center: learn a per-channel offset.
        scale: learn a per-channel scale.
    """

    def __init__(
        self,
        groups: int = 8,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.groups = int(groups)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"GroupNormalization: groups={self.groups} must divide the "
                f"channel count, got input shape {input_shape}."
            )
        self.gamma = (
            self.add_weight(shape=(channels,), initializer="ones", name="gamma")
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(shape=(channels,), initializer="zeros", name="beta")
            if self.center
            else None
        )

    def call(self, inputs, training=None, update_moving_statistics: bool = True):
        # `training` and `update_moving_statistics` are accepted so that the
        # decoder can treat every normalisation layer alike; statistics are
        # per example, so neither changes anything.
        del training, update_moving_statistics
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute_dtype)
        shape = ops.shape(x)
        channels = x.shape[-1]
        grouped = ops.reshape(
            x, (shape[0], -1, self.groups, channels // self.groups)
        )
        mean, variance = exact_moments(grouped, axes=(1, 3), keepdims=True)
        grouped = (grouped - mean) * ops.rsqrt(variance + self.epsilon)
        outputs = ops.reshape(grouped, shape)
        if self.gamma is not None:
            outputs = outputs * ops.cast(self.gamma, compute_dtype)
        if self.beta is not None:
            outputs = outputs + ops.cast(self.beta, compute_dtype)
        return ops.cast(outputs, self.compute_dtype)

    def linearize(self, inputs, tangents):
        """The output at one example and its derivatives along `tangents`.

        `inputs` is a single example `(1, ...)`, `tangents` a stack of
        directions `(K, ...)`; returns `(outputs, jvps)` with `jvps[k]` the
        derivative of the output along `tangents[k]`. Written with plain ops,
        so it is differentiable to any order (the GON's shared origin,
        `GradientOriginModel.origin_latents`).
        """
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute_dtype)
        t = ops.cast(tangents, compute_dtype)
        channels = x.shape[-1]
        group_shape = (-1, self.groups, channels // self.groups)
        grouped = ops.reshape(x, (1, *group_shape))
        grouped_t = ops.reshape(t, (ops.shape(t)[0], *group_shape))
        mean, variance = exact_moments(grouped, axes=(1, 3), keepdims=True)
        inverse_std = ops.rsqrt(variance + self.epsilon)
        normalized = (grouped - mean) * inverse_std
        # d[(x - m) / s] = (dx - mean(dx) - x̂ mean(x̂ dx)) / s over each group
        normalized_t = inverse_std * (
            grouped_t
            - ops.mean(grouped_t, axis=(1, 3), keepdims=True)
            - normalized * ops.mean(normalized * grouped_t, axis=(1, 3), keepdims=True)
        )
        outputs = ops.reshape(normalized, ops.shape(x))
        jvps = ops.reshape(normalized_t, ops.shape(t))
        if self.gamma is not None:
            gamma = ops.cast(self.gamma, compute_dtype)
            outputs, jvps = outputs * gamma, jvps * gamma
        if self.beta is not None:
            outputs = outputs + ops.cast(self.beta, compute_dtype)
        return ops.cast(outputs, self.compute_dtype), ops.cast(jvps, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "groups": self.groups,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
            }
        )
        return config

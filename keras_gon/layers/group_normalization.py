"""Group (and layer) normalisation with exact higher-order gradients."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _normalize_groups(grouped, epsilon: float):
    """`(x̂, 1/std)` of `grouped` (batch, positions, groups, channels), per example and group.

    The variance is the mean of squared deviations with no gradient stopped,
    so derivatives of any order are exact (as `batch_normalization.exact_moments`).
    """
    mean = tf.reduce_mean(grouped, axis=(1, 3), keepdims=True)
    centered = grouped - mean
    variance = tf.reduce_mean(tf.square(centered), axis=(1, 3), keepdims=True)
    inverse_std = tf.math.rsqrt(variance + epsilon)
    return centered * inverse_std, inverse_std


def group_normalize(
    x, gamma, beta, groups: int, epsilon: float, scale: bool = True, center: bool = True
):
    """Group normalisation of channels-last `x` with a hand-written backward pass.

    Normalises each example over the spatial axes and the channels of each
    of `groups` groups, then applies the per-channel `gamma` (if `scale`)
    and `beta` (if `center`); absent weights may be passed as scalars.

    The gradient is the closed form dx = (g - mean(g) - x̂ mean(g x̂)) / std,
    g = dy * gamma, computed with fewer and fused passes than TensorFlow's
    differentiation of the forward ops (no broadcast `Tile`s). It is written
    with differentiable ops on tensors the forward pass recorded, so
    second-order gradients (the GON's gradient of the origin gradient) are
    exact as well.
    """
    channels = x.shape[-1]
    group_size = channels // groups

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        shape = tf.shape(x)
        grouped = tf.reshape(x, (shape[0], -1, groups, group_size))
        normalized, inverse_std = _normalize_groups(grouped, epsilon)
        channel_scale = tf.reshape(gamma, (1, 1, groups, group_size)) if scale else None
        outputs = normalized if channel_scale is None else normalized * channel_scale
        if center:
            outputs = outputs + tf.reshape(beta, (1, 1, groups, group_size))

        def gradient(upstream):
            upstream = tf.reshape(upstream, tf.shape(grouped))
            if channel_scale is None:
                d_gamma = tf.zeros_like(gamma)
                g = upstream
            else:
                d_gamma = tf.reshape(tf.reduce_sum(upstream * normalized, axis=(0, 1)), (-1,))
                g = upstream * channel_scale
            if center:
                d_beta = tf.reshape(tf.reduce_sum(upstream, axis=(0, 1)), (-1,))
            else:
                d_beta = tf.zeros_like(beta)
            d_x = inverse_std * (
                g
                - tf.reduce_mean(g, axis=(1, 3), keepdims=True)
                - normalized * tf.reduce_mean(g * normalized, axis=(1, 3), keepdims=True)
            )
            return tf.reshape(d_x, shape), d_gamma, d_beta

        return tf.reshape(outputs, shape), gradient

    return normalize(x, gamma, beta)


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
        outputs = group_normalize(
            x,
            self._affine(self.gamma, compute_dtype),
            self._affine(self.beta, compute_dtype),
            groups=self.groups,
            epsilon=self.epsilon,
            scale=self.scale,
            center=self.center,
        )
        return ops.cast(outputs, self.compute_dtype)

    def _affine(self, weight, dtype):
        """A per-channel weight as a tensor of `dtype`, or a placeholder scalar when absent."""
        if weight is None:
            return tf.zeros((), dtype)
        return tf.cast(weight, dtype)

    def linearize(self, inputs, tangents):
        """The output at one example and its derivatives along `tangents`.

        `inputs` is a single example `(1, ...)`, `tangents` a stack of
        directions `(K, ...)`; returns `(outputs, jvps)` with `jvps[k]` the
        derivative of the output along `tangents[k]`. Written with plain ops,
        so it is differentiable to any order (the GON's shared origin,
        `GradientOriginModel.origin_latents`).

        Over each group the derivative of x̂ = (x - mean) / std along t is
        (t - mean(t) - x̂ mean(x̂ t)) / std: t minus its projection on the
        constant and on x̂.
        """
        outputs, project = self._linearization(inputs)
        jvps = project(ops.cast(tangents, outputs.dtype))
        if self.gamma is not None:
            jvps = jvps * tf.cast(self.gamma, jvps.dtype)
        return self._output(outputs), ops.cast(jvps, self.compute_dtype)

    def linearize_transpose(self, inputs):
        """The output at one example `inputs` `(1, ...)` and the transpose of its Jacobian.

        Returns `(outputs, transpose)`: `transpose(cotangents)` maps cotangents `(K, ...)`
        of the output to their vector-Jacobian products, the reverse mode of
        `linearize`. The normalisation's Jacobian (t minus its projections on the
        constant and on x̂, over std) is symmetric, so its transpose is the same map
        applied after the scale gamma instead of before. Plain ops, differentiable to
        any order.
        """
        outputs, project = self._linearization(inputs)

        def transpose(cotangents):
            cotangents = ops.cast(cotangents, outputs.dtype)
            if self.gamma is not None:
                cotangents = cotangents * tf.cast(self.gamma, cotangents.dtype)
            return ops.cast(project(cotangents), self.compute_dtype)

        return self._output(outputs), transpose

    def _output(self, normalized):
        """gamma x̂ + beta from x̂ (the compute dtype of the normalisation)."""
        outputs = normalized
        if self.gamma is not None:
            outputs = outputs * tf.cast(self.gamma, outputs.dtype)
        if self.beta is not None:
            outputs = outputs + tf.cast(self.beta, outputs.dtype)
        return ops.cast(outputs, self.compute_dtype)

    def _linearization(self, inputs):
        """`(x̂, project)` at one example: `project(t)` is the derivative of x̂ along each
        row of `t` `(K, ...)`, (t - mean(t) - x̂ mean(x̂ t)) / std over each group.

        For layer normalisation (one group) the two projections are two thin matrix
        products, which TensorFlow runs (and differentiates) faster than broadcast
        elementwise ops and reductions.
        """
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute_dtype)
        channels = x.shape[-1]
        group_shape = (-1, self.groups, channels // self.groups)
        normalized, inverse_std = _normalize_groups(tf.reshape(x, (1, *group_shape)), self.epsilon)

        def project(t):
            num_tangents = tf.shape(t)[0]
            if self.groups == 1:
                flat = tf.reshape(normalized, (1, -1))
                flat_t = tf.reshape(t, (num_tangents, -1))
                basis = tf.concat([tf.ones_like(flat), flat], axis=0)  # (2, N)
                size = tf.cast(tf.shape(flat)[1], compute_dtype)
                coefficients = (
                    tf.matmul(flat_t, basis, transpose_b=True) / size
                )  # mean(t), mean(x̂ t)
                projected = flat_t - tf.matmul(coefficients, basis)
                normalized_t = projected * tf.reshape(inverse_std, (1, 1))
            else:
                grouped_t = tf.reshape(t, (num_tangents, *group_shape))
                projection = tf.reduce_mean(normalized * grouped_t, axis=(1, 3), keepdims=True)
                normalized_t = (
                    grouped_t
                    - tf.reduce_mean(grouped_t, axis=(1, 3), keepdims=True)
                    - normalized * projection
                ) * inverse_std
            return tf.reshape(normalized_t, tf.shape(t))

        return tf.reshape(normalized, tf.shape(x)), project

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

"""The paper's convolutional decoder F: transposed 4x4 convs, normalisation, activation."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from keras_gon import options
from keras_gon.errors import InputError
from keras_gon.layers.batch_normalization import BatchNormalization
from keras_gon.layers.group_normalization import GroupNormalization
from keras_gon.resources import check_weights
from keras_gon.validation import check_choice, check_positive_int, check_square_image_shape

NORMALIZATIONS = options.NORMALIZATIONS
"""Normalisation choices for `ConvDecoder`:

- `"batch"`: the paper's BatchNorm; batch statistics in training in both the
  inner (origin) and the outer pass, moving statistics updated by both.
- `"batch_outer"`: batch statistics in training in both passes; moving
  statistics collected from the outer pass only.
- `"batch_frozen_origin"`: the inner pass always uses the moving statistics
  (in training too), which are collected from the outer pass; the outer pass
  uses batch statistics in training. The latent is then computed the same way
  in training and at inference, per example.
- `"group"` / `"layer"`: per-example group normalisation (8 groups, or fewer
  when the width has fewer channels) / layer normalisation.
- `"none"`: no normalisation.
- `"keras_batch"`: the stock `keras.layers.BatchNormalization` (PyTorch
  momentum and epsilon), whose second-order gradients are inexact; kept
  only to measure that.
"""


NON_ELEMENTWISE_ACTIVATIONS = ("softmax", "log_softmax", "sparsemax", "glu")


def check_conv_options(width, activation, normalization) -> None:
    """Refuses a width, activation or normalisation the conv decoder and encoder cannot take."""
    check_positive_int(width, "width")
    check_choice(normalization, "normalization", NORMALIZATIONS)
    try:
        activation_fn = keras.activations.get(activation)
    except ValueError:
        raise InputError(f"unknown activation {activation!r}") from None
    if getattr(activation_fn, "__name__", "") in NON_ELEMENTWISE_ACTIVATIONS:
        raise InputError(
            f"activation {activation!r} mixes channels: the decoder needs an elementwise "
            "activation (elu, relu, selu, gelu, swish, tanh, ...)"
        )


def check_latent_map_size(
    latent_map_size,
    latent_dim: int,
    image_size: int,
    dim_name: str = "latent_dim",
    size_name: str = "latent_map_size",
) -> int:
    """The side k of a spatial latent map (the paper's fig. 10a), or an `InputError`.

    k = 1 is a latent vector; otherwise k is a power of two with 4 <= k < image size
    and the latent is a k x k x (latent_dim / k²) map, so k² must divide `latent_dim`.
    `dim_name` and `size_name` are the caller's names of the two options.
    """
    k = check_positive_int(latent_map_size, size_name)
    if k == 1:
        return k
    if k < 4 or k & (k - 1) or k >= image_size:
        raise InputError(
            f"{size_name} must be 1 (a latent vector) or a power of two from 4 to "
            f"{image_size // 2} (half the image size), got {k}"
        )
    if latent_dim % (k * k):
        raise InputError(
            f"{dim_name}={latent_dim} is not divisible by {size_name}²={k * k}: a {k}x{k} "
            f"latent map has {dim_name} / {k * k} channels"
        )
    return k


def make_normalization(
    normalization: str,
    channels: int,
    momentum: float,
    epsilon: float,
    dtype=None,
    name: str | None = None,
):
    """The normalisation layer named by `normalization` (see `NORMALIZATIONS`), or None."""
    if normalization in ("batch", "batch_outer", "batch_frozen_origin"):
        return BatchNormalization(momentum=momentum, epsilon=epsilon, dtype=dtype, name=name)
    if normalization == "keras_batch":
        return keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, dtype=dtype, name=name
        )
    if normalization in ("group", "layer"):
        groups = 1 if normalization == "layer" else math.gcd(8, channels)
        return GroupNormalization(groups=groups, epsilon=epsilon, dtype=dtype, name=name)
    return None


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

# d activation(x) / dx in closed form, from x and y = activation(x): plain ops,
# differentiable again (exact second-order gradients), no gradient op in the
# inference graph (an exported encoder converts to ONNX).
ACTIVATION_DERIVATIVES = {
    "elu": lambda x, y: tf.where(x > 0, tf.ones_like(x), y + 1.0),  # alpha = 1
    "sigmoid": lambda x, y: y * (1.0 - y),
    "tanh": lambda x, y: 1.0 - tf.square(y),
    "relu": lambda x, y: tf.cast(x > 0, x.dtype),
    "selu": lambda x, y: tf.where(x > 0, SELU_SCALE * tf.ones_like(x), y + SELU_SCALE * SELU_ALPHA),
    "linear": lambda x, y: tf.ones_like(x),
}


def _elementwise_derivative(layer, x):
    """`layer(x)` and its derivative for an elementwise layer (an activation): the diagonal
    of its Jacobian, in the output's dtype."""
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    if name in ACTIVATION_DERIVATIVES:
        outputs = layer(x)
        return outputs, ACTIVATION_DERIVATIVES[name](keras.ops.cast(x, outputs.dtype), outputs)
    with tf.GradientTape() as tape:  # any other elementwise activation
        tape.watch(x)
        outputs = layer(x)
    return outputs, keras.ops.cast(tape.gradient(outputs, x), outputs.dtype)


def _linearize_elementwise(layer, x, tangents):
    """`layer(x)` and its derivatives along `tangents` for an elementwise layer (an activation)."""
    outputs, derivative = _elementwise_derivative(layer, x)
    return outputs, keras.ops.cast(tangents, outputs.dtype) * derivative


@keras.saving.register_keras_serializable(package="keras_gon")
class ConvDecoder(keras.layers.Layer):
    """DCGAN-style decoder F of the GON (paper §3.1 and appendix B).

    A latent of shape `(batch, latent_dim)` goes through a 4x4 transposed
    convolution to a 4x4 map with `width * 2**(n-1)` channels, then `n`
    stride-2 4x4 transposed convolutions that double the size and halve the
    channels, each but the last followed by normalisation and the
    activation; the last outputs `channels` maps through a sigmoid. For a
    32x32 image, n = 3 and the widths are 4w, 2w, w as in the paper.

    Spatial latents (the paper's fig. 10a): with `latent_map_size` k > 1 the
    latent is a k x k map with `latent_dim / k²` channels. The layers up to
    the k x k map are removed and the first remaining stride-2 transposed
    convolution takes the latent map: for a 32x32 image and k = 4,
    z (4, 4, c) -> 8x8 (2w) -> 16x16 (w) -> 32x32. Latents stay flat vectors
    `(batch, latent_dim)` outside the decoder, which reshapes them to
    (k, k, c) (row-major, channels last).

    Weights are initialised as PyTorch initialises them (uniform in
    ±1/sqrt(fan_in), biases included), as in the authors' code: with
    Keras's zero biases the output at the origin is constant and batch norm
    there degenerates.

    Args:
        image_shape: `(size, size, channels)`, size a power of two >= 8.
        latent_dim: size of the latent vector (the paper's nz).
        width: channels of the last hidden layer (the paper's ngf).
        activation: hidden activation; ELU by default (ReLU has zero second
            derivative, which the GON needs).
        normalization: one of `NORMALIZATIONS`.
        momentum: moving-statistics momentum for the batch norms.
        epsilon: normalisation epsilon.
        output_log_scale: also output a per-pixel log-scale (the
            discretised logistic likelihood's, `keras_gon.losses`): the last
            layer then has 2C channels, the sigmoid location in the first C
            and the log-scale (linear) in the last C.
        latent_map_size: side k of a spatial latent map (fig. 10a): 1 (a
            vector, the default) or a power of two from 4 to half the image
            size whose square divides `latent_dim`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (32, 32, 1),
        latent_dim: int = 32,
        width: int = 16,
        activation: str = "elu",
        normalization: str = "layer",
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        output_log_scale: bool = False,
        latent_map_size: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        size, _, channels = check_square_image_shape(image_shape)
        check_positive_int(latent_dim, "latent_dim")
        check_conv_options(width, activation, normalization)
        latent_map_size = check_latent_map_size(latent_map_size, latent_dim, size)

        # === Config ===
        self.image_shape = (size, size, channels)
        self.latent_dim = int(latent_dim)
        self.width = int(width)
        self.activation = activation
        self.normalization = normalization
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.output_log_scale = bool(output_log_scale)
        self.latent_map_size = latent_map_size

        # === Layers ===
        # Layer `index` outputs a map of side 4 * 2**index (the last one the image). A
        # k x k latent map replaces the layers up to side k; the rest keep their names.
        num_upsamplings = int(math.log2(size // 4))
        filters = [self.width * 2 ** (num_upsamplings - 1 - i) for i in range(num_upsamplings)]
        filters.append(channels * (2 if self.output_log_scale else 1))
        first_layer = 0 if latent_map_size == 1 else int(math.log2(latent_map_size // 4)) + 1
        inputs = [
            self.latent_dim // latent_map_size**2 if i == first_layer else filters[i - 1]
            for i in range(len(filters))
        ]
        check_weights(  # from the shapes, before any weight is made
            sum(16 * inputs[i] * filters[i] + filters[i] for i in range(first_layer, len(filters))),
            f"a ConvDecoder with latent_dim={self.latent_dim}, width={self.width}",
            np.dtype(self.dtype_policy.variable_dtype).itemsize,
        )
        self.convs = []
        self.norms = []
        self.activations = []
        for index in range(first_layer, len(filters)):
            out_channels = filters[index]
            projection = index == 0  # the 1x1 latent's 4x4 "valid" transposed conv
            bound = 1.0 / math.sqrt(out_channels * 16)  # PyTorch's fan_in for ConvTranspose2d
            self.convs.append(
                keras.layers.Conv2DTranspose(
                    out_channels,
                    4,
                    strides=1 if projection else 2,
                    padding="valid" if projection else "same",
                    kernel_initializer=keras.initializers.VarianceScaling(
                        1.0 / 3.0, mode="fan_in", distribution="uniform"
                    ),
                    bias_initializer=keras.initializers.RandomUniform(-bound, bound),
                    dtype=self.dtype_policy,
                    name=f"conv_transpose_{index}",
                )
            )
            if index < len(filters) - 1:
                self.norms.append(
                    make_normalization(
                        normalization,
                        out_channels,
                        self.momentum,
                        self.epsilon,
                        self.dtype_policy,
                        name=f"normalization_{index}",
                    )
                )
                self.activations.append(
                    keras.layers.Activation(
                        activation, dtype=self.dtype_policy, name=f"activation_{index}"
                    )
                )
        # Under mixed precision the output is float32, as Keras recommends.
        mixed = self.dtype_policy.compute_dtype != self.dtype_policy.variable_dtype
        self.output_activation = keras.layers.Activation(
            "sigmoid",
            dtype=self.dtype_policy.variable_dtype if mixed else self.dtype_policy,
            name="output_activation",
        )

    @property
    def latent_map_shape(self) -> tuple[int, int, int]:
        """(k, k, latent_dim / k²): the shape the decoder gives a latent (k = 1: a vector)."""
        k = self.latent_map_size
        return (k, k, self.latent_dim // (k * k))

    @property
    def projects_latents(self) -> bool:
        """Whether the first layer is the 1x1 latent's projection to a 4x4 map (k = 1)."""
        return self.latent_map_size == 1

    def build(self, input_shape):
        shape = (input_shape[0], *self.latent_map_shape)
        for index, conv in enumerate(self.convs):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if index < len(self.norms) and self.norms[index] is not None:
                self.norms[index].build(shape)

    def _norm(self, norm, x, training, inner_pass):
        if norm is None:
            return x
        if self.normalization == "keras_batch":
            return norm(x, training=training)
        if self.normalization == "batch_frozen_origin" and inner_pass:
            return norm(x, training=False, moving=True)
        update = not (inner_pass and self.normalization == "batch_outer")
        return norm(x, training=training, update_moving_statistics=update)

    def examples_independent(self, training, inner_pass: bool = True) -> bool:
        """Whether a pass treats each example on its own (no batch statistics).

        The one rule for the shared origin (`GradientOriginModel`): when it
        holds for the inner pass, F(0) and its Jacobian are the same for every
        example and `linearize` computes them once. True for per-example
        normalisation and none, and for batch norm with moving statistics (at
        inference, or the "batch_frozen_origin" inner pass); False for batch
        statistics (in training, or at inference under
        `keras_gon.layers.inference_statistics(model, "batch")`) and always
        for the stock "keras_batch".
        """
        if self.normalization == "keras_batch":
            return False
        if self.normalization == "batch_frozen_origin" and inner_pass:
            return True
        return not any(
            isinstance(norm, BatchNormalization) and norm.uses_batch_statistics(training)
            for norm in self.norms
        )

    def call(self, latents, training=None, inner_pass: bool = False, logits: bool = False):
        """Decode `latents` (batch, latent_dim) to images (batch, H, W, C) in [0, 1].

        `inner_pass=True` marks the pass at the origin (and later inner
        steps), which normalisation may treat differently (see `NORMALIZATIONS`).
        `logits=True` returns the output before the sigmoid (`output_activation`),
        for a loss that takes logits.
        """
        x = self._latent_map(latents)
        for index, conv in enumerate(self.convs):
            if index > 0 or not self.projects_latents:
                x = conv(x)
            if index < len(self.norms):
                x = self._norm(self.norms[index], x, training, inner_pass)
                x = self.activations[index](x)
        if logits and not self.output_log_scale:
            return keras.ops.cast(x, self.output_activation.compute_dtype)
        return self._output(x)

    def _output(self, x):
        """The sigmoid image or, with `output_log_scale`, the location and the log-scale."""
        if not self.output_log_scale:
            return self.output_activation(x)
        # Linear, not a sigmoid: the location of the discretised logistic must
        # reach below 0 and above 1 for the open bins of levels 0 and 255
        # (most MNIST pixels) to take probability near 1.
        return keras.ops.cast(x, self.output_activation.compute_dtype)

    def _latent_map(self, latents):
        """The first map: the projected 4x4 map (k = 1) or the latents as k x k x c maps."""
        if self.projects_latents:
            return self._project_latents(latents)
        latents = keras.ops.cast(latents, self.dtype_policy.compute_dtype)
        return keras.ops.reshape(latents, (-1, *self.latent_map_shape))

    def _latent_map_tangents(self, x):
        """The first map's Jacobian rows (latent_dim, *x.shape[1:]): the projection's kernel
        (k = 1), else the identity, since the latent map is a reshape of the latent."""
        if self.projects_latents:  # the first layer is linear in z: its rows are its kernel's
            return tf.reshape(
                tf.transpose(self._projection_matrix()), (self.latent_dim, *x.shape[1:])
            )
        identity = tf.eye(self.latent_dim, dtype=self.dtype_policy.compute_dtype)
        return tf.reshape(identity, (self.latent_dim, *self.latent_map_shape))

    def _projection_matrix(self):
        """The first transposed conv's kernel (4, 4, out, latent_dim) as a (4*4*out, latent_dim) matrix.

        A reshape, no copy: the kernel's rows are already ordered (i, j, out).
        """
        kernel = keras.ops.cast(self.convs[0].kernel, self.dtype_policy.compute_dtype)
        return tf.reshape(kernel, (-1, self.latent_dim))

    def _project_latents(self, latents):
        """The first layer, a 4x4 "valid" transposed conv of a 1x1 map, as the matmul it is.

        On a 1x1 input the transposed convolution is out[i, j] = kernel[i, j] z + bias,
        exactly, without TensorFlow's slower Conv2DBackpropInput kernel (benchmarks/RESULTS.md).
        Uses the layer's own weights, so models saved before load unchanged.
        """
        conv = self.convs[0]
        size = conv.kernel_size
        latents = keras.ops.cast(latents, self.dtype_policy.compute_dtype)
        x = tf.matmul(latents, self._projection_matrix(), transpose_b=True)
        x = keras.ops.reshape(x, (-1, size[0], size[1], conv.filters))
        return x + keras.ops.cast(conv.bias, x.dtype)

    def linearize(self, latent, training=None, inner_pass: bool = True):
        """F at one latent and its Jacobian there, in one forward pass.

        `latent` is `(1, latent_dim)`; returns `(outputs, jacobian)`:
        `outputs` (1, H, W, C) is `call(latent)` and `jacobian`
        (latent_dim, H, W, C) holds ∂F/∂z_k in row k. The Jacobian is
        forward-mode: the identity's rows are pushed through each layer's
        linearisation (the transposed convolutions without bias, each
        normalisation's `linearize`, the activations' derivatives), a pass
        over `latent_dim` "images" instead of a backward pass per example.
        With a spatial latent (`latent_map_size` > 1) the identity's rows,
        reshaped to (k, k, c) maps, go through the first transposed
        convolution as through the others. Plain ops throughout, so an
        enclosing tape differentiates it to any order and XLA compiles it.

        Only for passes that treat each example on its own: per-example
        normalisation, none, or batch norm with moving statistics (at
        inference, or the "batch_frozen_origin" inner pass).
        """
        return self._linearize(latent, training, inner_pass)

    def linearize_transpose(self, latent, training=None, inner_pass: bool = True):
        """F at one latent, and the transpose of its Jacobian there (reverse mode).

        `latent` is `(1, latent_dim)`; returns `(outputs, transpose)`: `outputs`
        (1, H, W, C) is `call(latent)`, and `transpose(cotangents)` maps cotangents
        (batch, H, W, C) of the output to Jᵀ c (batch, latent_dim), the gradients a
        backward pass of the whole batch through F at `latent` would give, without
        the batch's forward pass: each layer's linearisation at `latent` is transposed
        (the activations' derivatives, each normalisation's `linearize_transpose`, the
        transposed convolutions' adjoint convolutions, the first layer's kernel).
        Cheaper than `linearize` when the cotangents are fewer than the latent's
        dimensions. Plain ops throughout, so an enclosing tape differentiates it to
        any order.

        Only for passes that treat each example on its own (as `linearize`).
        """
        if not self.built:
            self.build((None, self.latent_dim))
        compute_dtype = self.dtype_policy.compute_dtype
        x = self._latent_map(latent)
        transposes = []  # each layer's, in the forward order
        for index, conv in enumerate(self.convs):
            if index > 0 or not self.projects_latents:
                x = conv(x)
                transposes.append(self._convolution_transpose(conv))
            if index < len(self.norms):
                norm = self.norms[index]
                if norm is not None:
                    x, transpose = self._transpose_norm(norm, x, training, inner_pass)
                    transposes.append(transpose)
                x, derivative = _elementwise_derivative(self.activations[index], x)
                transposes.append(lambda c, d=derivative: keras.ops.cast(c, d.dtype) * d)
        if self.output_log_scale:  # linear outputs
            outputs = self._output(x)
        else:
            outputs, derivative = _elementwise_derivative(self.output_activation, x)
            transposes.append(lambda c, d=derivative: keras.ops.cast(c, d.dtype) * d)

        def transpose(cotangents):
            c = cotangents
            for step in reversed(transposes):
                c = step(c)
            c = keras.ops.cast(c, compute_dtype)
            flat = tf.reshape(c, (tf.shape(c)[0], -1))
            if self.projects_latents:  # the first layer's rows are its kernel's (`linearize`)
                return tf.matmul(flat, self._projection_matrix())
            return flat  # the latent map is a reshape of the latent

        return outputs, transpose

    def _convolution_transpose(self, conv):
        """The adjoint of a transposed convolution without bias: the convolution with its kernel."""
        kernel = keras.ops.cast(conv.kernel, self.dtype_policy.compute_dtype)

        def transpose(cotangents):
            return keras.ops.conv(
                keras.ops.cast(cotangents, kernel.dtype),
                kernel,
                strides=list(conv.strides),
                padding=conv.padding,
                data_format=conv.data_format,
                dilation_rate=conv.dilation_rate,
            )

        return transpose

    def _transpose_norm(self, norm, x, training, inner_pass):
        """A normalisation's output at one example and its Jacobian's transpose (as `_linearize_norm`)."""
        moving = (self.normalization == "batch_frozen_origin" and inner_pass) or (
            isinstance(norm, BatchNormalization) and not norm.uses_batch_statistics(training)
        )
        if isinstance(norm, GroupNormalization) or (
            isinstance(norm, BatchNormalization) and moving
        ):
            return norm.linearize_transpose(x)
        raise ValueError(
            f"ConvDecoder.linearize_transpose: normalization={self.normalization!r} with batch "
            "statistics couples the examples of a batch; there is no per-example Jacobian"
        )

    def origin_batch_coupled(self, training, inner_pass: bool = True) -> bool:
        """Whether a pass normalises with batch statistics that `linearize_origin_batch`
        linearises (this package's batch norm; the stock "keras_batch" is not)."""
        return self.normalization != "keras_batch" and not self.examples_independent(
            training, inner_pass
        )

    def linearize_origin_batch(self, latent, batch_size, training=None, inner_pass: bool = True):
        """F at a batch of `batch_size` identical latents and its Jacobians there.

        For passes with batch statistics at a GON's origin (z0 = 0 for every
        example). Returns `(outputs, mean_jacobian, deviation_jacobian)`: to first
        order F(z_j) = outputs + J_mean z̄ + J_dev (z_j - z̄), z̄ the batch mean:
        a move of every latent alike changes the statistics, a move apart does not
        (`BatchNormalization.linearize_batch`). Both Jacobians are
        (latent_dim, H, W, C), from one forward pass of 2 * latent_dim tangents.
        The batch norms' moving statistics are updated as `call` on the batch would.
        """
        outputs, tangents = self._linearize(latent, training, inner_pass, batch_size=batch_size)
        return outputs, tangents[: self.latent_dim], tangents[self.latent_dim :]

    def _linearize(self, latent, training, inner_pass, batch_size=None):
        if not self.built:
            self.build((None, self.latent_dim))
        compute_dtype = self.dtype_policy.compute_dtype
        x = self._latent_map(latent)
        tangents = self._latent_map_tangents(x)
        if batch_size is not None:  # the common moves, then the moves apart
            tangents = tf.concat([tangents, tangents], axis=0)
        for index, conv in enumerate(self.convs):
            if index > 0 or not self.projects_latents:
                x = conv(x)
                tangents = keras.ops.conv_transpose(
                    tangents,
                    keras.ops.cast(conv.kernel, compute_dtype),
                    strides=list(conv.strides),
                    padding=conv.padding,
                    output_padding=conv.output_padding,
                    dilation_rate=conv.dilation_rate,
                    data_format=conv.data_format,
                )
            if index < len(self.norms):
                x, tangents = self._linearize_norm(
                    self.norms[index], x, tangents, training, inner_pass, batch_size
                )
                x, tangents = _linearize_elementwise(self.activations[index], x, tangents)
        if self.output_log_scale:  # linear outputs
            return self._output(x), keras.ops.cast(tangents, self.output_activation.compute_dtype)
        return _linearize_elementwise(self.output_activation, x, tangents)

    def _linearize_norm(self, norm, x, tangents, training, inner_pass, batch_size=None):
        if norm is None:
            return x, tangents
        moving = (self.normalization == "batch_frozen_origin" and inner_pass) or (
            isinstance(norm, BatchNormalization) and not norm.uses_batch_statistics(training)
        )
        if isinstance(norm, GroupNormalization) or (
            isinstance(norm, BatchNormalization) and moving
        ):
            return norm.linearize(x, tangents)
        if isinstance(norm, BatchNormalization) and batch_size is not None:
            update = not (inner_pass and self.normalization == "batch_outer")  # as `_norm`
            return norm.linearize_batch(
                x,
                tangents,
                self.latent_dim,
                batch_size,
                training=training,
                update_moving_statistics=update,
            )
        raise ValueError(
            f"ConvDecoder.linearize: normalization={self.normalization!r} with batch statistics "
            "couples the examples of a batch; there is no per-example Jacobian"
        )

    def compute_output_shape(self, input_shape):
        height, width, channels = self.image_shape
        return (input_shape[0], height, width, channels * (2 if self.output_log_scale else 1))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "latent_dim": self.latent_dim,
                "width": self.width,
                "activation": self.activation,
                "normalization": self.normalization,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "output_log_scale": self.output_log_scale,
                "latent_map_size": self.latent_map_size,
            }
        )
        return config


DECODER_OPTIONS = options.DECODER_OPTIONS
"""The options of a `ConvDecoder` that a model may take flat (`GON(latent_dim=32, ...)`)."""


def take_decoder(decoder, kwargs: dict, **fixed) -> ConvDecoder:
    """A model's `ConvDecoder`, its options given once.

    `decoder` is a `ConvDecoder`, its config (a dict, as `get_config` stores
    it), or None: then it is built from the `DECODER_OPTIONS` found in
    `kwargs` (a model constructor's keyword arguments, from which they are
    removed). `fixed` are options the model decides itself (e.g. the
    variational models' `output_log_scale`); a given decoder must agree.
    """
    given = {name: kwargs.pop(name) for name in DECODER_OPTIONS if name in kwargs}
    if decoder is None:
        return ConvDecoder(**given, **fixed, dtype=kwargs.get("dtype"), name="decoder")
    if given:
        raise InputError(
            f"give the decoder's options once: decoder=... or {', '.join(sorted(given))}, not both"
        )
    if isinstance(decoder, dict):
        decoder = (
            keras.saving.deserialize_keras_object(decoder)
            if "class_name" in decoder
            else ConvDecoder(**decoder)
        )
    if not isinstance(decoder, ConvDecoder):
        raise InputError(
            f"decoder must be a keras_gon.layers.ConvDecoder, got {type(decoder).__name__}"
        )
    for name, value in fixed.items():
        if getattr(decoder, name) != value:
            raise InputError(f"this model needs a decoder with {name}={value!r}")
    return decoder

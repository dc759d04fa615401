"""The SIREN layer: a dense layer with a sine activation (Sitzmann et al., 2020)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from keras_gon.errors import InputError


def _is_shape_list(shape) -> bool:
    return (
        isinstance(shape, (list, tuple)) and len(shape) > 0 and isinstance(shape[0], (list, tuple))
    )


@keras.saving.register_keras_serializable(package="keras_gon")
class SineDense(keras.layers.Layer):
    """`sin(w0 * (x @ W + b))`, the layer of a SIREN (the implicit GON's F, paper §3.4).

    Weights are initialised as in SIREN and the authors' implicit GON: the
    first layer's kernel uniform in ±1/fan_in, every other layer's in
    ±sqrt(6/fan_in)/w0, so that the pre-activations of every layer stay
    distributed alike. Biases are initialised as PyTorch's `nn.Linear`
    initialises them (uniform in ±1/sqrt(fan_in)), as in the authors' code.

    With `use_sine=False` the layer is SIREN's linear output layer,
    `x @ W + b`, with the same (non-first) kernel initialisation.

    Args:
        units: output size.
        w0: frequency factor ω0 (30 in SIREN and the paper).
        is_first: whether the layer is the network's first (input) layer,
            which changes the kernel initialisation.
        use_sine: apply `sin(w0 * .)`; False for a linear output layer.
        use_bias: whether the layer has a bias.
    """

    def __init__(
        self,
        units: int,
        w0: float = 30.0,
        is_first: bool = False,
        use_sine: bool = True,
        use_bias: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(units, (bool, np.bool_))
            or not isinstance(units, (int, np.integer))
            or units < 1
        ):
            raise InputError(f"units must be a positive integer, got {units!r}")
        if (
            isinstance(w0, (bool, np.bool_))
            or not isinstance(w0, (int, float, np.integer, np.floating))
            or not 0.0 < float(w0) < math.inf
        ):
            raise InputError(f"w0 must be a positive number, got {w0!r}")

        # === Config ===
        self.units = int(units)
        self.w0 = float(w0)
        self.is_first = bool(is_first)
        self.use_sine = bool(use_sine)
        self.use_bias = bool(use_bias)

    def kernel_bound(self, fan_in: int) -> float:
        """Half-width of the uniform kernel initialisation for `fan_in` inputs."""
        if self.is_first:
            return 1.0 / fan_in
        return math.sqrt(6.0 / fan_in) / self.w0

    def build(self, input_shape):
        shapes = input_shape if _is_shape_list(input_shape) else [input_shape]
        if any(shape[-1] is None for shape in shapes):
            raise InputError("SineDense needs a known input size (last axis)")
        fan_in = sum(int(shape[-1]) for shape in shapes)
        bound = self.kernel_bound(fan_in)
        self.kernel = self.add_weight(
            shape=(fan_in, self.units),
            initializer=keras.initializers.RandomUniform(-bound, bound),
            name="kernel",
        )
        if self.use_bias:
            bias_bound = 1.0 / math.sqrt(fan_in)
            self.bias = self.add_weight(
                shape=(self.units,),
                initializer=keras.initializers.RandomUniform(-bias_bound, bias_bound),
                name="bias",
            )
        else:
            self.bias = None

    def call(self, inputs):
        """`inputs`: a tensor `(..., fan_in)`, or a list of parts whose last axes make `fan_in`.

        A list stands for the concatenation of its parts along the last axis,
        each part broadcast against the others: `[coords (1, n, 2),
        latents (b, 1, d)]` is `concat` of both broadcast to (b, n, 2 + d).
        Each part is multiplied by its rows of the kernel and the products
        broadcast-added (the same value, without materialising the
        broadcast concatenation).
        """
        outputs = self._parts_times_kernel(inputs)
        if self.bias is not None:
            outputs = outputs + self.bias
        if self.use_sine:
            outputs = ops.sin(self.w0 * outputs)
        return outputs

    def _parts_times_kernel(self, parts, sizes=None):
        """`parts @ kernel` for a tensor, or the broadcast sum of each part times its rows of
        the kernel (`sizes`: the rows of each part, by default its last axis; a part that is
        None is skipped, its rows too)."""
        if not isinstance(parts, (list, tuple)):
            return ops.matmul(parts, self.kernel)
        sizes = sizes or [part.shape[-1] for part in parts]
        outputs, start = None, 0
        for part, size in zip(parts, sizes):
            if part is not None:
                product = ops.matmul(part, self.kernel[start : start + size])
                outputs = product if outputs is None else outputs + product
            start += size
        return outputs

    def linearize(self, inputs, tangents):
        """The layer's output and its derivatives along `tangents` (forward mode).

        `inputs` as `call` takes them (a tensor, or a list of broadcast parts);
        `tangents` has a leading axis of K directions and otherwise the shape of
        `inputs` (a list: one tangent per part, None where the part is held
        fixed, e.g. a SIREN's coordinates). Returns `(outputs, jvps)`, jvps
        `(K, ..., units)`. Plain ops: an enclosing tape differentiates it to any
        order (the implicit GON's shared origin).
        """
        linear = self._parts_times_kernel(inputs)
        if isinstance(inputs, (list, tuple)):
            jvps = self._parts_times_kernel(tangents, [part.shape[-1] for part in inputs])
        else:
            jvps = self._parts_times_kernel(tangents)
        if self.bias is not None:
            linear = linear + self.bias
        if not self.use_sine:  # broadcast as the output is (a part held fixed may vary)
            return linear, jvps + ops.zeros_like(linear)
        # d sin(w0 a) = w0 cos(w0 a) da, a the pre-activation
        return ops.sin(self.w0 * linear), jvps * (self.w0 * ops.cos(self.w0 * linear))

    def compute_output_shape(self, input_shape):
        if _is_shape_list(input_shape):
            rank = max(len(shape) for shape in input_shape)
            padded = [(1,) * (rank - len(shape)) + tuple(shape) for shape in input_shape]
            batch_shape = []
            for sizes in zip(*(shape[:-1] for shape in padded)):
                known = [size for size in sizes if size not in (None, 1)]
                batch_shape.append(known[0] if known else (None if None in sizes else 1))
            return tuple(batch_shape) + (self.units,)
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "w0": self.w0,
                "is_first": self.is_first,
                "use_sine": self.use_sine,
                "use_bias": self.use_bias,
            }
        )
        return config

"""A convolutional encoder that mirrors `ConvDecoder`, for the paper's baselines."""

from __future__ import annotations

import math

import keras

from keras_gon.layers.conv_decoder import (
    ConvDecoder,
    check_conv_options,
    check_latent_map_size,
    make_normalization,
)
from keras_gon.validation import check_positive_int, check_square_image_shape


@keras.saving.register_keras_serializable(package="keras_gon")
class ConvEncoder(keras.layers.Layer):
    """DCGAN-style encoder, the mirror image of `ConvDecoder`.

    An image `(batch, size, size, channels)` goes through stride-2 4x4
    convolutions that halve the size and double the channels (`width`,
    `2 * width`, ...) down to a 4x4 map, each followed by normalisation and
    the activation, then a 4x4 "valid" convolution to `output_dim` values.
    For 32x32 images the widths are w, 2w, 4w: the decoder's in reverse.
    Used by the autoencoder and VAE baselines (paper Tables 1-2), which must
    share the GON's decoder and differ only by having an encoder.

    For a decoder with spatial latents (the paper's fig. 10a,
    `ConvDecoder(latent_map_size=k)`), `output_map_size=k` mirrors it: the
    stride-2 convolutions go down to a k x k map, the last one with
    `output_dim / k²` channels and no normalisation or activation, and the
    map is flattened (row-major, channels last, as the decoder reshapes it).

    Args:
        image_shape: `(size, size, channels)`, size a power of two >= 8.
        output_dim: size of the output vector (e.g. the latent size, or
            twice it for a mean and a log-variance).
        width: channels of the first convolution (the decoder's `width`).
        activation: hidden activation.
        normalization: as in `ConvDecoder`; the inner-pass variants of
            batch norm behave as plain batch norm here (an encoder has no
            origin pass).
        momentum: batch-norm momentum.
        epsilon: normalisation epsilon.
        output_map_size: side k of the output map: 1 (a vector, the
            default) or a power of two from 4 to half the image size whose
            square divides `output_dim`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (32, 32, 1),
        output_dim: int = 32,
        width: int = 16,
        activation: str = "elu",
        normalization: str = "layer",
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        output_map_size: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        size, _, channels = check_square_image_shape(image_shape)
        check_positive_int(output_dim, "output_dim")
        check_conv_options(width, activation, normalization)
        output_map_size = check_latent_map_size(
            output_map_size, output_dim, size, dim_name="output_dim", size_name="output_map_size"
        )

        # === Config ===
        self.image_shape = (size, size, channels)
        self.output_dim = int(output_dim)
        self.width = int(width)
        self.activation = activation
        self.normalization = normalization
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.output_map_size = output_map_size

        # === Layers ===
        # Hidden layer `index` outputs a map of side size / 2**(index + 1), down to 4x4
        # (then a "valid" conv to 1x1), or to 2k x 2k (then a stride-2 conv to k x k).
        final_size = 4 if output_map_size == 1 else 2 * output_map_size
        num_downsamplings = int(math.log2(size // final_size))
        filters = [self.width * 2**i for i in range(num_downsamplings)]
        self.convs = []
        self.norms = []
        self.activations = []
        for index, out_channels in enumerate(filters):
            self.convs.append(self._conv(out_channels, 2, "same", index))
            self.norms.append(
                make_normalization(
                    normalization,
                    out_channels,
                    momentum,
                    epsilon,
                    self.dtype_policy,
                    name=f"normalization_{index}",
                )
            )
            self.activations.append(
                keras.layers.Activation(
                    activation, dtype=self.dtype_policy, name=f"activation_{index}"
                )
            )
        if output_map_size == 1:
            self.convs.append(self._conv(self.output_dim, 1, "valid", len(filters)))
        else:
            out_channels = self.output_dim // output_map_size**2
            self.convs.append(self._conv(out_channels, 2, "same", len(filters)))

    @classmethod
    def mirroring(cls, decoder: ConvDecoder, output_dim: int, **kwargs) -> ConvEncoder:
        """The encoder that mirrors `decoder` (its image shape, width, activation,
        normalisation, latent map size and dtype), with `output_dim` outputs."""
        mirrored = ("image_shape", "width", "activation", "normalization", "momentum", "epsilon")
        return cls(
            output_dim=output_dim,
            output_map_size=decoder.latent_map_size,
            dtype=decoder.dtype_policy,
            **{name: getattr(decoder, name) for name in mirrored},
            **kwargs,
        )

    def _conv(self, filters, strides, padding, index):
        # PyTorch's default initialisation (uniform in ±1/sqrt(fan_in)), as in ConvDecoder.
        bound = 1.0 / math.sqrt(self._in_channels(index) * 16)
        return keras.layers.Conv2D(
            filters,
            4,
            strides=strides,
            padding=padding,
            kernel_initializer=keras.initializers.VarianceScaling(
                1.0 / 3.0, mode="fan_in", distribution="uniform"
            ),
            bias_initializer=keras.initializers.RandomUniform(-bound, bound),
            dtype=self.dtype_policy,
            name=f"conv_{index}",
        )

    def _in_channels(self, index):
        return self.image_shape[-1] if index == 0 else self.width * 2 ** (index - 1)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for index, conv in enumerate(self.convs):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if index < len(self.norms) and self.norms[index] is not None:
                self.norms[index].build(shape)

    def call(self, images, training=None):
        """Encode images (batch, H, W, C) to vectors (batch, output_dim)."""
        x = images
        for index, conv in enumerate(self.convs):
            x = conv(x)
            if index < len(self.norms):
                if self.norms[index] is not None:
                    x = self.norms[index](x, training=training)
                x = self.activations[index](x)
        return keras.ops.reshape(x, (-1, self.output_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "output_dim": self.output_dim,
                "width": self.width,
                "activation": self.activation,
                "normalization": self.normalization,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "output_map_size": self.output_map_size,
            }
        )
        return config

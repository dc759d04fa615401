"""The tied autoencoder baseline: the decoder's kernels reused by the encoder (paper Table 1)."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_gon.layers.conv_decoder import ConvDecoder, make_normalization
from keras_gon.models.conv_decoder_model import ConvDecoderModel
from keras_gon.models.latent_model import LatentModel


@keras.saving.register_keras_serializable(package="keras_gon")
class TiedAutoencoder(ConvDecoderModel, LatentModel):
    """Autoencoder whose encoder convolves with the decoder's own kernels.

    A `Conv2DTranspose` kernel has the layout (kh, kw, out, in), and a
    transposed convolution is the adjoint of the convolution with the same
    kernel and strides; read as a `Conv2D` kernel (kh, kw, in, out) the same
    array maps the decoder layer's output channels back to its input
    channels. The encoder therefore runs the decoder's kernels in reverse
    order as plain convolutions: stride-2 "same" ones for the upsampling
    layers, and the first layer's 4x4 "valid" kernel (4, 4, 4w, latent_dim)
    last, taking the 4x4 map to a 1x1 latent. With spatial latents (the
    paper's fig. 10a, `latent_map_size` k > 1) every decoder layer is a
    stride-2 one, so the last encoder convolution is too: it takes the
    2k x 2k map to the k x k latent map, which is flattened. Only the
    encoder's biases and normalisations are its own. This is the paper's
    "tied AE" baseline: about as many parameters as the GON.

    Args:
        decoder: a `ConvDecoder` or its config, or (by default) built from the decoder
            options given flat, as in `keras_gon.GON`; its kernels are the encoder's too
            (so there is no `encoder` option).
        **kwargs: `LatentModel`'s options (`outer_loss`, `seed`, ...) and `keras.Model`'s.
    """

    def __init__(self, decoder: ConvDecoder | dict | None = None, **kwargs):
        # === Layers ===
        decoder = self.make_decoder(decoder, kwargs)
        super().__init__(image_shape=decoder.image_shape, latent_dim=decoder.latent_dim, **kwargs)
        self.decoder = decoder
        # Encoder layer j uses decoder kernel n-1-j; its output has that kernel's `in` channels.
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        kernels = self.tied_kernels
        self.encoder_norms = []
        self.encoder_activations = []
        for index, kernel in enumerate(kernels[:-1]):
            self.encoder_norms.append(
                make_normalization(
                    decoder.normalization,
                    kernel.shape[-1],
                    decoder.momentum,
                    decoder.epsilon,
                    self.dtype_policy,
                    name=f"encoder_normalization_{index}",
                )
            )
            self.encoder_activations.append(
                keras.layers.Activation(
                    decoder.activation, dtype=self.dtype_policy, name=f"encoder_activation_{index}"
                )
            )
        self.encoder_biases = []
        for index, kernel in enumerate(kernels):
            fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
            bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default bias initialisation
            self.encoder_biases.append(
                self.add_weight(
                    shape=(kernel.shape[-1],),
                    initializer=keras.initializers.RandomUniform(-bound, bound),
                    name=f"encoder_bias_{index}",
                )
            )
        self.build()

    @property
    def tied_kernels(self):
        """The decoder's transposed-conv kernels in encoder order (last decoder layer first)."""
        return [conv.kernel for conv in reversed(self.decoder.convs)]

    def build(self, input_shape=None):
        """Creates the weights of the encoder's normalisations; shapes come from the config."""
        shape = (None, *self.image_shape)
        for index, kernel in enumerate(self.tied_kernels[:-1]):
            shape = (None, shape[1] // 2, shape[2] // 2, kernel.shape[-1])
            norm = self.encoder_norms[index]
            if norm is not None and not norm.built:
                norm.build(shape)
        self.built = True

    def decode_latents(self, latents, training=False):
        return self.decoder(latents, training=training)

    def encode_latents(self, images, training=False):
        """z = E(x), E convolving with the decoder's kernels (layer by layer its adjoint)."""
        x = images
        kernels = self.tied_kernels
        for index, kernel in enumerate(kernels):
            last = index == len(kernels) - 1
            projection = last and self.decoder.projects_latents  # the 4x4 "valid" kernel
            kernel = ops.cast(kernel, x.dtype)
            x = ops.conv(
                x, kernel, strides=1 if projection else 2, padding="valid" if projection else "same"
            )
            x = x + ops.cast(self.encoder_biases[index], x.dtype)
            if not last:
                if self.encoder_norms[index] is not None:
                    x = self.encoder_norms[index](x, training=training)
                x = self.encoder_activations[index](x)
        return ops.reshape(x, (-1, self.latent_dim))

"""What every model with the paper's convolutional decoder shares: its options, given once."""

from __future__ import annotations

import keras

from keras_gon.layers.conv_decoder import ConvDecoder, take_decoder
from keras_gon.layers.conv_encoder import ConvEncoder
from keras_gon.layers.linear_encoder import LinearEncoder
from keras_gon.validation import check_choice

ENCODERS = {"conv": ConvEncoder, "linear": LinearEncoder}
"""The encoders of the autoencoder baselines: "conv" mirrors the decoder (the paper's
baselines), "linear" is one affine map, the class of encoder a GON's origin gradient is."""


class ConvDecoderModel:
    """Mixin (before the `keras.Model` base) for models whose F is a `ConvDecoder`.

    Such a model takes the decoder once: `decoder=` (a `ConvDecoder` or its
    config), or the decoder's options flat (`image_shape`, `latent_dim`,
    `width`, `activation`, `normalization`, `momentum`, `epsilon`,
    `latent_map_size`, see `keras_gon.layers.ConvDecoder`). Its config stores
    the decoder's config under "decoder" instead of repeating its options, and,
    for a model with an encoder from `make_encoder`, that encoder's name (a key
    of `ENCODERS`) under "encoder", read from the layer itself. The "conv"
    encoder mirrors a spatial latent map too (`ConvEncoder.mirroring`).
    """

    decoder: ConvDecoder

    @staticmethod
    def make_decoder(decoder, options: dict, **fixed) -> ConvDecoder:
        """`keras_gon.layers.conv_decoder.take_decoder`: the decoder, its options removed
        from `options` (the model's remaining keyword arguments)."""
        return take_decoder(decoder, options, **fixed)

    @staticmethod
    def make_encoder(encoder: str, decoder: ConvDecoder, output_dim: int) -> keras.layers.Layer:
        """The encoder called `encoder` (a key of `ENCODERS`) of `decoder`'s images."""
        check_choice(encoder, "encoder", tuple(ENCODERS))
        return ENCODERS[encoder].mirroring(decoder, output_dim, name="encoder")

    def get_config(self):
        config = super().get_config()
        for name in ("image_shape", "latent_dim"):  # the decoder's, stored once
            config.pop(name, None)
        encoder = getattr(self, "encoder", None)  # one of `make_encoder`'s: its name
        for name, encoder_class in ENCODERS.items():
            if type(encoder) is encoder_class:
                config["encoder"] = name
        decoder = keras.saving.serialize_keras_object(self.decoder)
        decoder.pop("build_config", None)  # the model builds its decoder itself
        config["decoder"] = decoder
        return config

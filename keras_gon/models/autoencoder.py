"""The convolutional autoencoder baseline (paper Table 1)."""

from __future__ import annotations

import keras

from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.models.conv_decoder_model import ConvDecoderModel
from keras_gon.models.latent_model import LatentModel


@keras.saving.register_keras_serializable(package="keras_gon")
class ConvAutoencoder(ConvDecoderModel, LatentModel):
    """Autoencoder with the GON's decoder and a mirrored convolutional encoder.

    z = E(x) with `keras_gon.layers.ConvEncoder` (strided 4x4 convolutions,
    the decoder's normalisation and activation, widths w, 2w, 4w), trained on
    SSE(x, F(E(x))): the paper's "AE" baseline, with the same decoder F and
    loss as the GON but an encoder's extra parameters.

    Example:

    ```python
    ae = keras_gon.ConvAutoencoder(latent_dim=32, width=16)
    ae.compile(optimizer=keras.optimizers.Adam(1e-4))
    ae.fit(train_ds, epochs=5)
    ae.evaluate(test_ds, return_dict=True)["loss"]   # held-out SSE, as the GON's
    ```

    Args:
        decoder: a `ConvDecoder` or its config, or (by default) built from the
            decoder options given flat, as in `keras_gon.GON`.
        encoder: "conv" (the mirrored `ConvEncoder`, the paper's baseline) or
            "linear" (`keras_gon.layers.LinearEncoder`: one affine map, the
            class of encoder a GON's origin gradient is).
        **kwargs: the decoder options, `LatentModel`'s (`outer_loss`,
            `outer_target`, `seed`) and `keras.Model`'s.
    """

    def __init__(self, decoder: ConvDecoder | dict | None = None, encoder: str = "conv", **kwargs):
        # === Layers ===
        decoder = self.make_decoder(decoder, kwargs)
        encoder_layer = self.make_encoder(encoder, decoder, decoder.latent_dim)
        super().__init__(image_shape=decoder.image_shape, latent_dim=decoder.latent_dim, **kwargs)
        self.decoder = decoder
        self.encoder = encoder_layer
        self.build()

    def build(self, input_shape=None):
        """Creates the encoder's and decoder's weights; every shape is known from the config."""
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        if not self.encoder.built:
            self.encoder.build((None, *self.image_shape))
        self.built = True

    def encode_latents(self, images, training=False):
        """z = E(x)."""
        return self.encoder(images, training=training)

    def decode_latents(self, latents, training=False):
        return self.decoder(latents, training=training)

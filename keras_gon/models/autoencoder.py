"""The convolutional autoencoder baseline (paper Table 1)."""

from __future__ import annotations

import keras

from keras_gon.layers.conv_encoder import ConvEncoder
from keras_gon.models.baseline import DecoderBaseline


@keras.saving.register_keras_serializable(package="keras_gon")
class ConvAutoencoder(DecoderBaseline):
    """Autoencoder with the GON's decoder and a mirrored convolutional encoder.

    z = E(x) with `keras_gon.layers.ConvEncoder` (strided 4x4 convolutions,
    the decoder's normalisation and activation, widths w, 2w, 4w), trained on
    SSE(x, F(E(x))): the paper's "AE" baseline, with the same decoder F and
    loss as the GON but an encoder's extra parameters.

    Example:

    ```python
    model = keras_gon.ConvAutoencoder(image_shape=(32, 32, 1), latent_dim=32, width=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(train_ds, validation_data=test_ds, epochs=5)
    z = model.encode(x); x_hat = model.decode(z)
    ```

    Args: as `keras_gon.models.baseline.DecoderBaseline` (the GON's decoder
        options, `outer_loss`, `seed`).
    """

    def __init__(self, image_shape=(32, 32, 1), latent_dim=32, width=16, activation="elu",
                 normalization="layer", momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(
            image_shape=image_shape, latent_dim=latent_dim, width=width, activation=activation,
            normalization=normalization, momentum=momentum, epsilon=epsilon, **kwargs,
        )
        # === Layers ===
        self.encoder = ConvEncoder(
            image_shape=self.image_shape,
            output_dim=self.latent_dim,
            width=self.width,
            activation=activation,
            normalization=normalization,
            momentum=self.momentum,
            epsilon=self.epsilon,
            name="encoder",
        )
        self.build()

    def build(self, input_shape=None):
        """Creates the encoder's and decoder's weights; every shape is known from the config."""
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        if not self.encoder.built:
            self.encoder.build((None, *self.image_shape))
        self.built = True

    def infer_latents(self, images, training=False):
        """z = E(x)."""
        return self.encoder(images, training=training)

"""The convolutional Gradient Origin Network (paper §3.1)."""

from __future__ import annotations

import keras

from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.models.gradient_origin import GradientOriginModel


@keras.saving.register_keras_serializable(package="keras_gon")
class GON(GradientOriginModel):
    """Gradient Origin Network with the paper's convolutional decoder.

    The decoder (`keras_gon.layers.ConvDecoder`) is both decoder and, through
    its gradient at the origin, encoder: z = -∇z0 SSE(x, F(z0)) (eq. 3),
    trained on SSE(x, F(z)) (eq. 4).

    Example:

    ```python
    model = keras_gon.GON(image_shape=(32, 32, 1), latent_dim=32, width=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(train_ds, validation_data=test_ds, epochs=5)
    z = model.encode(x); x_hat = model.decode(z)
    ```

    Args:
        image_shape: `(size, size, channels)`, size a power of two >= 8.
        latent_dim: latent size (the paper's nz).
        width: channels of the decoder's last hidden layer (the paper's ngf).
        activation: hidden activation ("elu" by default).
        normalization: see `keras_gon.layers.NORMALIZATIONS`; the paper's
            BatchNorm is "batch".
        momentum: batch-norm moving-statistics momentum.
        epsilon: normalisation epsilon.
        **kwargs: options of `GradientOriginModel` (`inner_loss`,
            `outer_loss`, `num_steps`, `step_size`, `detach`,
            `origin_stddev`, `inner_batch_reduction`, `seed`) and
            `keras.Model` (`name`, ...).
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
        **kwargs,
    ):
        # === Layers ===
        decoder = ConvDecoder(
            image_shape=image_shape,
            latent_dim=latent_dim,
            width=width,
            activation=activation,
            normalization=normalization,
            momentum=momentum,
            epsilon=epsilon,
            dtype=kwargs.get("dtype"),  # a reloaded mixed-precision GON computes as it was saved
            name="decoder",
        )
        super().__init__(latent_dim=latent_dim, **kwargs)
        self.decoder = decoder

        # === Config ===
        self.image_shape = decoder.image_shape
        self.width = decoder.width
        self.activation = activation
        self.normalization = normalization
        self.momentum = decoder.momentum
        self.epsilon = decoder.epsilon
        self.build()

    @property
    def input_spec_shape(self):
        return self.image_shape

    def build(self, input_shape=None):
        """Creates the decoder's weights; every shape is known from the config."""
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.built = True

    def decode_latents(self, latents, training=False, inner_pass=False):
        return self.decoder(latents, training=training, inner_pass=inner_pass)

    def origin_is_shared(self, training: bool) -> bool:
        """The decoder's own rule (`ConvDecoder.examples_independent`) for the inner pass."""
        return self.decoder.examples_independent(training, inner_pass=True)

    def linearize_decoder(self, latent, training=False):
        return self.decoder.linearize(latent, training=training, inner_pass=True)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "width": self.width,
                "activation": self.activation,
                "normalization": self.normalization,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
            }
        )
        return config

"""An affine encoder, z = W vec(x) + b: the class of encoder a GON's origin gradient is."""

from __future__ import annotations

import keras

from keras_gon.layers.dense import pytorch_dense
from keras_gon.validation import check_positive_int, check_square_image_shape


@keras.saving.register_keras_serializable(package="keras_gon")
class LinearEncoder(keras.layers.Layer):
    """One dense map from the flattened image to `output_dim` values.

    For SSE and an origin that is the same for every example, a GON's latent
    z = -∇z0 ||x - F(z0)||² = 2 J(0)ᵀ (x - F(0)) (eq. 8) is an affine function
    of the image. An autoencoder or VAE with this encoder instead of
    `ConvEncoder` has the same class of encoder as the GON, with its matrix
    free rather than tied to the decoder's Jacobian: the baseline that tells
    what the GON's encoder costs or gains.

    Args:
        image_shape: `(size, size, channels)`.
        output_dim: size of the output vector (the latent size, or twice it
            for a mean and a log-variance).
    """

    def __init__(
        self, image_shape: tuple[int, int, int] = (32, 32, 1), output_dim: int = 32, **kwargs
    ):
        super().__init__(**kwargs)
        size, _, channels = check_square_image_shape(image_shape)
        check_positive_int(output_dim, "output_dim")

        # === Config ===
        self.image_shape = (size, size, channels)
        self.output_dim = int(output_dim)

        # === Layers ===
        # PyTorch's default initialisation, as ConvEncoder's.
        self.dense = pytorch_dense(
            self.output_dim, size * size * channels, "dense", self.dtype_policy
        )

    @classmethod
    def mirroring(cls, decoder, output_dim: int, **kwargs) -> LinearEncoder:
        """The linear encoder of `decoder`'s images (its image shape and dtype)."""
        return cls(
            image_shape=decoder.image_shape,
            output_dim=output_dim,
            dtype=decoder.dtype_policy,
            **kwargs,
        )

    def build(self, input_shape):
        size, _, channels = self.image_shape
        self.dense.build((None, size * size * channels))

    def call(self, images, training=None):
        """Encode images (batch, H, W, C) to vectors (batch, output_dim)."""
        size, _, channels = self.image_shape
        return self.dense(keras.ops.reshape(images, (-1, size * size * channels)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"image_shape": self.image_shape, "output_dim": self.output_dim})
        return config

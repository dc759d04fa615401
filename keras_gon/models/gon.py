"""The convolutional Gradient Origin Network (paper §3.1, eq. 8)."""

from __future__ import annotations

import keras

from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.models.conv_decoder_model import ConvDecoderModel
from keras_gon.models.gradient_origin import GradientOriginModel


@keras.saving.register_keras_serializable(package="keras_gon")
class GON(ConvDecoderModel, GradientOriginModel):
    """Gradient Origin Network with the paper's convolutional decoder.

    The decoder (`keras_gon.layers.ConvDecoder`) is both decoder and, through
    its gradient at the origin, encoder: z = -∇z0 SSE(x, F(z0)), and F is
    trained on SSE(x, F(z)) through that gradient (eq. 8).

    Example:

    ```python
    model = keras_gon.GON(image_shape=(32, 32, 1), latent_dim=32, width=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(train_ds, validation_data=test_ds, epochs=5)
    z = model.encode(x); x_hat = model.decode(z)
    ```

    Args:
        decoder: a `ConvDecoder` (or its config); by default one is built
            from the decoder options given here: `image_shape`,
            `latent_dim`, `width`, `activation` ("elu"), `normalization`
            ("layer"; the paper's BatchNorm is "batch"), `momentum`, `epsilon`,
            `latent_map_size` (1; k > 1 for a spatial k x k latent map, fig. 10a).
        **kwargs: the decoder options above, the options of
            `GradientOriginModel` (`inner_loss`, `outer_loss`, `num_steps`,
            `step_size`, `detach`, `origin_stddev`, `add_origin`,
            `inner_batch_reduction`, `share_origin`, `seed`, `outer_target`)
            and `keras.Model`'s (`name`, `dtype`, ...).
    """

    def __init__(self, decoder: ConvDecoder | dict | None = None, **kwargs):
        # === Layers ===
        decoder = self.make_decoder(decoder, kwargs)
        super().__init__(image_shape=decoder.image_shape, latent_dim=decoder.latent_dim, **kwargs)
        self.decoder = decoder
        self.build()

    def build(self, input_shape=None):
        """Creates the decoder's weights; every shape is known from the config."""
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.built = True

    def decode_latents(self, latents, training=False, inner_pass=False):
        return self.decoder(latents, training=training, inner_pass=inner_pass)

    def origin_is_shared(self, training: bool) -> bool:
        """The decoder's own rules for the inner pass: examples independent
        (`ConvDecoder.examples_independent`), or coupled only through batch statistics
        that `ConvDecoder.linearize_origin_batch` linearises at the origin."""
        return self.decoder.examples_independent(training, inner_pass=True) or (
            self.decoder.origin_batch_coupled(training, inner_pass=True)
        )

    def linearize_decoder(self, latent, training=False):
        return self.decoder.linearize(latent, training=training, inner_pass=True)

    def linearize_decoder_transpose(self, latent, training=False):
        return self.decoder.linearize_transpose(latent, training=training, inner_pass=True)

    def origin_transposes(self, training: bool) -> bool:
        """The reverse mode wherever the inner pass treats examples on its own."""
        return self.decoder.examples_independent(training, inner_pass=True)

    def origin_couples_examples(self, training: bool) -> bool:
        return self.decoder.origin_batch_coupled(training, inner_pass=True)

    def linearize_decoder_at_origin(self, latent, batch_size, training=False):
        if self.origin_couples_examples(training):
            return self.decoder.linearize_origin_batch(
                latent, batch_size, training=training, inner_pass=True
            )
        return super().linearize_decoder_at_origin(latent, batch_size, training=training)

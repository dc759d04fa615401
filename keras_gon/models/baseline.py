"""Common base of the paper's baselines that share the GON's decoder (Table 1)."""

from __future__ import annotations

import keras

from keras_gon.errors import InputError
from keras_gon.layers.conv_decoder import ConvDecoder
from keras_gon.models.gradient_origin import GradientOriginModel

# Options of the origin gradient that a model without one does not take.
ORIGIN_GRADIENT_OPTIONS = (
    "inner_loss",
    "num_steps",
    "step_size",
    "detach",
    "origin_stddev",
    "inner_batch_reduction",
    "add_origin",
)


@keras.saving.register_keras_serializable(package="keras_gon")
class DecoderBaseline(GradientOriginModel):
    """A model with exactly the GON's decoder whose latents come from elsewhere.

    The baselines of the paper's Table 1 (autoencoders, GLO) differ from the
    GON only in how a latent is found. They reuse `GradientOriginModel`'s
    training loop, metrics (`loss`: per-example SSE, mean over the batch),
    `fit`/`evaluate` checks, `encode`/`decode`/`reconstruct` and saving, with
    the origin gradient replaced by `infer_latents` (an encoder, or latents
    fitted by gradient descent). The origin-gradient options (`num_steps`,
    `detach`, ...) are refused.

    Args:
        image_shape, latent_dim, width, activation, normalization, momentum,
            epsilon: the decoder's, as in `keras_gon.GON`.
        outer_loss: per-example reconstruction loss ("sse" by default).
        seed: seed of the model's random state.
        **kwargs: `outer_target` and `keras.Model` options (`name`, ...).
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
        outer_loss: str = "sse",
        seed: int | None = None,
        **kwargs,
    ):
        refused = sorted(set(kwargs) & set(ORIGIN_GRADIENT_OPTIONS))
        if refused:
            raise InputError(
                f"{type(self).__name__} has no origin gradient: it takes no {', '.join(refused)}"
            )
        # === Layers ===
        decoder = ConvDecoder(
            image_shape=image_shape,
            latent_dim=latent_dim,
            width=width,
            activation=activation,
            normalization=normalization,
            momentum=momentum,
            epsilon=epsilon,
            name="decoder",
        )
        super().__init__(latent_dim=latent_dim, outer_loss=outer_loss, seed=seed, **kwargs)
        self.decoder = decoder

        # === Config ===
        self.image_shape = decoder.image_shape
        self.width = decoder.width
        self.activation = activation
        self.normalization = normalization
        self.momentum = decoder.momentum
        self.epsilon = decoder.epsilon

    @property
    def input_spec_shape(self):
        return self.image_shape

    def decode_latents(self, latents, training=False, inner_pass=False):
        return self.decoder(latents, training=training)

    def infer_latents(self, images, training=False):
        """The latents of `images` (batch, latent_dim): what the subclass provides."""
        raise NotImplementedError(f"{type(self).__name__} must implement infer_latents")

    def origin_latents(self, data, training=False):
        """`infer_latents` in place of the origin gradient; no inner loss."""
        return self.infer_latents(data, training=training), None

    def _update_metrics(self, inner_losses, outer_losses):
        self.loss_tracker.update_state(outer_losses)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def get_config(self):
        config = super().get_config()
        for name in ORIGIN_GRADIENT_OPTIONS:
            config.pop(name, None)
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

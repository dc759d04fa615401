"""The reparameterisation trick: a sample of N(μ, σ²) that gradients flow through."""

from __future__ import annotations

import keras
from keras import ops

from keras_gon.distribute import batch_normal


@keras.saving.register_keras_serializable(package="keras_gon")
class Reparameterization(keras.layers.Layer):
    """z = μ + exp(½ log σ²) · ε with ε ~ N(0, I) (Kingma & Welling, 2014).

    Called on `[mean, log_variance]`, both `(batch, latent_dim)`. Samples in
    training and returns the mean at inference; `sample=True` / `False`
    overrides that (e.g. a Monte Carlo ELBO at evaluation, with the
    normalisation still in inference mode). The noise comes from a
    `keras.random.SeedGenerator`, so a seeded layer draws the same sequence,
    and under a `tf.distribute` strategy each example gets the noise it would
    get on one device (`keras_gon.distribute.batch_normal`).

    Args:
        seed: seed of the noise (None: from Keras's global seed).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.seed = seed

        # === State ===
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None, sample: bool | None = None):
        mean, log_variance = inputs
        if not (bool(training) if sample is None else sample):
            return mean
        noise = batch_normal(ops.shape(mean), self.seed_generator, dtype=mean.dtype)
        return mean + ops.exp(0.5 * log_variance) * noise

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config

"""The GON classifier: a linear softmax layer on the origin gradient (paper eq. 13)."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.models.gon import GON


@keras.saving.register_keras_serializable(package="keras_gon")
class GONClassifier(GON):
    """Classifies images from their GON latent: p(y|x) = softmax(W z + b), z = -∇z0 L (eq. 13).

    The latent is the convolutional GON's origin gradient (eq. 3) and the
    loss is the cross entropy of the linear softmax layer, plus
    `reconstruction_weight` times the GON's SSE(x, F(z)) (eq. 4): 0 trains
    a classifier alone (the decoder learns only through the gradient in z),
    > 0 trains it jointly with reconstruction. Data are `(images, labels)`
    with integer labels (`load_dataset(..., with_labels=True)`).

    Metrics: `loss` (the total), `cross_entropy`, `accuracy` and, when
    `reconstruction_weight > 0`, `sse`. `predict`/`classify` give class
    probabilities; `encode`/`decode`/`reconstruct` are the GON's.

    Args:
        num_classes: number of classes.
        reconstruction_weight: weight of the SSE term (>= 0).
        Others: as `keras_gon.GON`.
    """

    def __init__(self, num_classes: int = 10, reconstruction_weight: float = 0.0, **kwargs):
        if int(num_classes) < 2:
            raise InputError(f"num_classes must be >= 2, got {num_classes}")
        if not float(reconstruction_weight) >= 0:
            raise InputError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")
        if kwargs.get("outer_target", "input") != "input":
            raise InputError("GONClassifier's targets are labels: outer_target must be 'input'")
        # === Config === (before GON.__init__, whose build() creates the classifier layer)
        self.num_classes = int(num_classes)
        self.reconstruction_weight = float(reconstruction_weight)
        super().__init__(**kwargs)

    def build(self, input_shape=None):
        """Creates the decoder's and the linear softmax layer's weights."""
        super().build(input_shape)
        if not hasattr(self, "classifier"):
            # === Layers ===
            self.classifier = keras.layers.Dense(self.num_classes, name="classifier")
            self.classifier.build((None, self.latent_dim))
            # === State ===
            self.cross_entropy_tracker = keras.metrics.Mean(name="cross_entropy")
            self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            self.sse_tracker = keras.metrics.Mean(name="sse")
        self.built = True

    def _unpack_labels(self, data):
        _, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None or not labels.dtype.is_integer:
            raise InputError(
                "GONClassifier trains on (images, integer labels): use "
                "load_dataset(..., with_labels=True)"
            )
        return tf.reshape(labels, (-1,))

    def _objective(self, x, labels, training):
        latents, _ = self.origin_latents(x, training=training)
        logits = tf.cast(self.classifier(latents), "float32")
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )
        loss = tf.reduce_mean(cross_entropy)
        sse = None
        if self.reconstruction_weight > 0:
            sse = self.outer_losses(x, latents, training=training)
            loss = loss + self.reconstruction_weight * tf.cast(tf.reduce_mean(sse), loss.dtype)
        return loss, logits, cross_entropy, sse

    def _classifier_metrics(self, loss, labels, logits, cross_entropy, sse):
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(labels)[0])
        self.cross_entropy_tracker.update_state(cross_entropy)
        self.accuracy_tracker.update_state(labels, logits)
        if sse is not None:
            self.sse_tracker.update_state(sse)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = self._unpack_batch(data)
        labels = self._unpack_labels(data)
        with tf.GradientTape() as tape:
            loss, logits, cross_entropy, sse = self._objective(x, labels, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._classifier_metrics(loss, labels, logits, cross_entropy, sse)

    def test_step(self, data):
        x = self._unpack_batch(data)
        labels = self._unpack_labels(data)
        loss, logits, cross_entropy, sse = self._objective(x, labels, training=False)
        return self._classifier_metrics(loss, labels, logits, cross_entropy, sse)

    @property
    def metrics(self):
        metrics = [self.loss_tracker, self.cross_entropy_tracker, self.accuracy_tracker]
        return metrics + ([self.sse_tracker] if self.reconstruction_weight > 0 else [])

    def call(self, inputs, training=None):
        """Class probabilities (batch, num_classes) (what `predict` returns)."""
        latents, _ = self.origin_latents(inputs, training=bool(training))
        return tf.nn.softmax(self.classifier(latents))

    def classify(self, images):
        """Class probabilities of `images` at inference: (batch, num_classes)."""
        x = self._check_inputs(images)
        fn = self._inference_function("classify", lambda x: self(x, training=False))
        return fn(x)

    def reconstruct(self, images):
        """F(z(x)) at inference, as the GON's."""
        x = self._check_inputs(images)
        fn = self._inference_function(
            "reconstruct",
            lambda x: self.decode_latents(self.origin_latents(x, training=False)[0]),
        )
        return fn(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "reconstruction_weight": self.reconstruction_weight,
            }
        )
        return config

"""The GON classifier: a linear softmax layer on the origin gradient (paper eq. 13)."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.models.gon import GON
from keras_gon.validation import check_number, check_positive_int


@keras.saving.register_keras_serializable(package="keras_gon")
class GONClassifier(GON):
    """Classifies images from their GON latent: p(y|x) = softmax(W z + b), z = -∇z0 L (eq. 13).

    The latent is the convolutional GON's origin gradient (eq. 8) and the
    loss is the cross entropy of the linear softmax layer, plus
    `reconstruction_weight` times the GON's SSE(x, F(z)): 0 trains a
    classifier alone (the decoder learns only through the gradient in z),
    > 0 trains it jointly with reconstruction. Data are `(images, labels)`
    with integer labels (`load_dataset(..., with_labels=True)`).

    Metrics: `loss` (the total), `cross_entropy`, `accuracy` and, when
    `reconstruction_weight > 0`, `sse`; `compile(metrics=...)` compares the
    class probabilities with the labels. `predict`/`classify` give class
    probabilities; `encode`/`decode`/`reconstruct` are the GON's.

    Args:
        num_classes: number of classes.
        reconstruction_weight: weight of the SSE term (>= 0).
        **kwargs: as `keras_gon.GON`.
    """

    def __init__(self, num_classes: int = 10, reconstruction_weight: float = 0.0, **kwargs):
        if kwargs.get("outer_target", "input") != "input":
            raise InputError("GONClassifier's targets are labels: outer_target must be 'input'")
        num_classes = check_positive_int(num_classes, "num_classes")
        if num_classes < 2:
            raise InputError(f"num_classes must be >= 2, got {num_classes}")
        # === Config === (before GON.__init__: `metric_terms` and build() read them)
        self.num_classes = num_classes
        self.reconstruction_weight = check_number(
            reconstruction_weight, "reconstruction_weight", minimum=0.0
        )
        super().__init__(**kwargs)

    @property
    def metric_terms(self) -> tuple[str, ...]:
        return ("cross_entropy", "accuracy") + (("sse",) if self.reconstruction_weight > 0 else ())

    def build(self, input_shape=None):
        """Creates the decoder's and the linear softmax layer's weights."""
        super().build(input_shape)
        if not hasattr(self, "classifier"):
            # === Layers ===
            self.classifier = keras.layers.Dense(self.num_classes, name="classifier")
            self.classifier.build((None, self.latent_dim))
        self.built = True

    def integer_targets(self) -> tuple[str, str, int]:
        """The labels are integers in [0, num_classes)."""
        return ("labels", "num_classes", self.num_classes)

    def required_targets(self) -> str:
        """The classifier trains on (images, integer labels)."""
        return (
            "GONClassifier trains on (images, integer labels): "
            "use load_dataset(..., with_labels=True)"
        )

    def unpack_labels(self, data):
        """The integer labels of a batch, or a clear error."""
        return self.unpack_integers(data, self.required_targets())

    def compute_terms(self, data, training=False) -> dict:
        """Per example: cross entropy (+ weighted SSE) as the loss, accuracy (eq. 13)."""
        images = self.unpack_images(data)
        labels = self.unpack_labels(data)
        latents, _ = self.find_latents(images, training=training)
        logits = tf.cast(self.classifier(latents), "float32")
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )
        correct = tf.cast(
            tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), "float32"
        )
        terms = {
            "loss": cross_entropy,
            "cross_entropy": cross_entropy,
            "accuracy": correct,
            "latents": latents,
            "predictions": tf.nn.softmax(logits),
            "targets": labels,
        }
        if self.reconstruction_weight > 0:
            sse = self.outer_losses(images, latents, training=training)
            terms["sse"] = sse
            terms["loss"] = cross_entropy + self.reconstruction_weight * tf.cast(sse, "float32")
        return terms

    def call(self, inputs, training=None):
        """Class probabilities (batch, num_classes) (what `predict` returns)."""
        latents, _ = self.find_latents(self.prepare_images(inputs), training=bool(training))
        return tf.nn.softmax(self.classifier(latents))

    def classify(self, images):
        """Class probabilities of `images` at inference: (batch, num_classes)."""
        x = self.check_images(images)
        return self.inference_function("classify", lambda x: self(x, training=False))(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "reconstruction_weight": self.reconstruction_weight,
            }
        )
        return config

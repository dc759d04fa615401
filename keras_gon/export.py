"""Export to SavedModel for TF-Serving: encoders, decoders and samplers with named signatures."""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras
import tensorflow as tf

from keras_gon.errors import InputError

SERVING_METHOD = "tensorflow/serving/predict"


def _image_spec(model) -> tf.TensorSpec:
    return tf.TensorSpec((None, *model.image_shape), tf.float32, name="images")


def _latent_spec(model) -> tf.TensorSpec:
    return tf.TensorSpec((None, model.latent_dim), tf.float32, name="latents")


def serving_endpoints(model) -> dict:
    """name -> (function, input signature) of every signature exported for `model`.

    `reconstruct` (images -> reconstructions, also `serving_default`),
    `encode` (images -> latents; for a GON the gradient at the origin, eq. 8,
    runs inside the graph) and `decode` (latents -> images); `sample` (count,
    seed -> images) for models with `sample_images` or `sample_latents`; `render` (latents,
    resolution -> images) for models with `render_latents`; `classify`
    (images -> class probabilities) for a `GONClassifier`. Everything runs
    in inference mode: no variable changes, no batch statistics.
    """
    image_spec, latent_spec = _image_spec(model), _latent_spec(model)

    def checked(tensor, spec):
        # The signature's static shape is not enforced when a SavedModel
        # signature is called: EnsureShape refuses a wrong shape or rank at
        # run time with a message naming both shapes.
        return tf.ensure_shape(tensor, spec.shape, name=f"check_{spec.name}")

    def as_images(values):
        # float32 in [0, 1] whatever the model's compute dtype; a no-op for
        # sigmoid decoders, the clipping `ImplicitGON.render` applies for SIRENs.
        return tf.clip_by_value(tf.cast(values, tf.float32), 0.0, 1.0)

    def reconstruct(images):
        images = checked(images, image_spec)
        latents = model.encode_latents(images, training=False)
        return {"reconstructions": as_images(model.decode_latents(latents, training=False))}

    def encode(images):
        images = checked(images, image_spec)
        return {"latents": tf.cast(model.encode_latents(images, training=False), tf.float32)}

    def decode(latents):
        latents = checked(latents, latent_spec)
        return {"images": as_images(model.decode_latents(latents, training=False))}

    endpoints = {
        "reconstruct": (reconstruct, [image_spec]),
        "encode": (encode, [image_spec]),
        "decode": (decode, [latent_spec]),
    }
    if hasattr(model, "sample_images") or hasattr(model, "sample_latents"):

        def sample(count, seed):
            with tf.control_dependencies(
                [tf.debugging.assert_positive(count, message="sample: count must be >= 1")]
            ):
                count = tf.identity(count)
            if hasattr(model, "sample_images"):
                return {"images": as_images(model.sample_images(count, seed))}
            latents = model.sample_latents(count, seed)
            return {"images": as_images(model.decode_latents(latents, training=False))}

        endpoints["sample"] = (
            sample,
            [tf.TensorSpec((), tf.int32, name="count"), tf.TensorSpec((), tf.int32, name="seed")],
        )
    if hasattr(model, "classify"):

        def classify(images):
            images = checked(images, image_spec)
            return {"probabilities": model(images, training=False)}

        endpoints["classify"] = (classify, [image_spec])
    if hasattr(model, "render_latents"):

        def render(latents, resolution):
            latents = checked(latents, latent_spec)
            return {"images": as_images(model.render_latents(latents, resolution))}

        endpoints["render"] = (
            render,
            [latent_spec, tf.TensorSpec((), tf.int32, name="resolution")],
        )
    return endpoints


def export_saved_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Writes `model` as a SavedModel at `path` with named serving signatures.

    Each signature takes float32 NHWC images in [0, 1] (or latents) with a
    free batch dimension and fixed other dimensions, so a request of the
    wrong shape or rank is refused by the signature with the expected shape
    in the message. The endpoints are not XLA-compiled (TF-Serving on GPU
    cannot load XLA-compiled functions, tensorflow/serving#2214).
    """
    if not hasattr(model, "encode_latents") or not hasattr(model, "decode_latents"):
        raise InputError(f"{type(model).__name__} has no encoder/decoder to export")
    path = Path(path)
    if path.exists():
        raise InputError(f"{path} already exists: an export never overwrites a version")
    model = _serving_copy(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, signature) in serving_endpoints(model).items():
        archive.add_endpoint(name=name, fn=function, input_signature=signature)
    archive.write_out(str(path), verbose=False)
    return path


def _serving_copy(model: keras.Model) -> keras.Model:
    """The model rebuilt from its config with its weights, without optimizer state.

    Exporting the training model would also save the optimizer's slots
    (twice the weights, for Adam), which serving never reads.
    """
    copy = type(model).from_config(model.get_config())
    if not copy.built:
        copy.build(None)
    if len(copy.weights) != len(model.weights):
        raise InputError(
            f"cannot export {type(model).__name__}: its copy has {len(copy.weights)} weights, "
            f"the model {len(model.weights)}"
        )
    for target, source in zip(copy.weights, model.weights):
        target.assign(source)
    return copy


def next_version_dir(base: str | os.PathLike) -> Path:
    """`base/<n>` for the next free integer version (1 for a new base): TF-Serving's layout."""
    base = Path(base)
    versions = [
        int(child.name)
        for child in base.iterdir()
        if child.is_dir() and re.fullmatch(r"\d+", child.name)
    ] if base.is_dir() else []
    return base / str(max(versions, default=0) + 1)

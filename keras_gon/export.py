"""Export to SavedModel for TF-Serving: encoders, decoders and samplers with named signatures.

Versions appear whole or not at all: `export_version(model, base)` claims the
next free version number (a hidden `.claim-<n>` folder, made atomically, so
concurrent exports never collide), writes the SavedModel inside it and renames
it to `base/<n>` only when complete. TF-Serving loads only numeric folders, so
it never sees a half-written version; a claim left by a killed export is
removed by the next export.

ONNX (Keras's `model.export(path, format="onnx")`): the encoders of the GON,
the implicit GON, the classifier, the autoencoders and the VAE convert (the
GONs' shared origin is plain ops). The variational GON's differentiates a
batched pass at inference, and tf2onnx has no converter for
`BroadcastGradientArgs`, `EluGrad`, `SigmoidGrad` and `StridedSliceGrad`;
GLO's fitting loop is not converted either.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import keras
import tensorflow as tf

from keras_gon.errors import InputError

SERVING_METHOD = "tensorflow/serving/predict"


def _image_spec(model) -> tf.TensorSpec:
    # any height and width: requests are resized to the model's size in the graph
    return tf.TensorSpec((None, None, None, model.image_shape[-1]), tf.float32, name="images")


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
        # signature is called: EnsureShape refuses a wrong rank or channel
        # count at run time with a message naming both shapes; non-finite
        # values are refused (INVALID_ARGUMENT) instead of giving NaN latents.
        tensor = tf.ensure_shape(tensor, spec.shape, name=f"check_{spec.name}")
        tensor = tf.debugging.assert_all_finite(
            tensor, f"{spec.name} contain NaN or infinite values", name=f"finite_{spec.name}")
        if spec.name == "images":  # uint8-valued (0-255) or [0, 1], any size
            tensor = model.prepare_images(tensor)
        return tensor

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

    Each image signature takes float32 NHWC images of any height and width,
    in [0, 1] or as grey levels 0-255 (e.g. a 28x28 uint8 digit for a 32x32
    model), prepared as `model.prepare_images` does; latents are
    (batch, latent_dim). A wrong rank or channel count, or a non-finite value,
    is refused with INVALID_ARGUMENT and a message naming it. The endpoints
    are not XLA-compiled (TF-Serving on GPU cannot load XLA-compiled
    functions, tensorflow/serving#2214). The folder appears whole or not at
    all: the SavedModel is written to a hidden folder beside `path`, then
    renamed.
    """
    if not hasattr(model, "encode_latents") or not hasattr(model, "decode_latents"):
        raise InputError(f"{type(model).__name__} has no encoder/decoder to export")
    path = Path(path)
    if path.exists():
        raise InputError(f"{path} already exists: an export never overwrites a version")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".partial-{path.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write_archive(model, staging)
        os.rename(staging, path)  # refuses a non-empty existing `path`
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _write_archive(model: keras.Model, path: Path) -> None:
    model = _serving_copy(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, signature) in serving_endpoints(model).items():
        archive.add_endpoint(name=name, fn=function, input_signature=signature)
    archive.write_out(str(path), verbose=False)


def _serving_copy(model: keras.Model) -> keras.Model:
    """The model rebuilt from its config with its weights, without optimizer state; a
    GON's shared origin frozen (`GradientOriginModel.freeze_origin`: the exported encoder
    is one matrix product per request).

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
    if hasattr(copy, "freeze_origin"):  # weights fixed: F(0) and J computed once, here
        copy.freeze_origin()
    return copy


def _versions(base: Path) -> list[int]:
    return [int(child.name) for child in base.iterdir()
            if child.is_dir() and re.fullmatch(r"\d+", child.name)] if base.is_dir() else []


def _claims(base: Path) -> dict[int, Path]:
    claims = {}
    if base.is_dir():
        for child in base.iterdir():
            match = re.fullmatch(r"\.claim-(\d+)", child.name)
            if match and child.is_dir():
                claims[int(match.group(1))] = child
    return claims


def _claim_is_stale(claim: Path) -> bool:
    """A claim whose export process, on this host, is gone (or that names none)."""
    try:
        host, pid = (claim / "owner").read_text().split()
    except (OSError, ValueError):
        return True
    if host != socket.gethostname():
        return False  # another machine's export: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_claims(base: str | os.PathLike) -> list[Path]:
    """Removes the claims (and partial SavedModels) of exports that were killed."""
    removed = []
    for claim in _claims(Path(base)).values():
        if _claim_is_stale(claim):
            shutil.rmtree(claim, ignore_errors=True)
            removed.append(claim)
    return removed


def next_version_dir(base: str | os.PathLike) -> Path:
    """`base/<n>` for the next free integer version (1 for a new base): TF-Serving's layout.

    Hidden folders (claims and partial exports) are not versions; numbers
    claimed by exports under way are skipped.
    """
    base = Path(base)
    taken = set(_versions(base)) | set(_claims(base))
    return base / str(max(taken, default=0) + 1)


def export_version(model: keras.Model, base: str | os.PathLike) -> Path:
    """Exports `model` as the next version under `base`, safely beside other exports.

    Claims the number with an atomic `mkdir` of `base/.claim-<n>` (another
    export that computed the same number takes the next), writes the
    SavedModel inside the claim and renames it to `base/<n>` when it is
    complete. Returns the version folder.
    """
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    remove_stale_claims(base)
    number = int(next_version_dir(base).name)
    while True:
        claim = base / f".claim-{number}"
        try:
            claim.mkdir()
        except FileExistsError:
            number += 1
            continue
        if (base / str(number)).exists():  # finished since we looked
            shutil.rmtree(claim, ignore_errors=True)
            number += 1
            continue
        break
    try:
        (claim / "owner").write_text(f"{socket.gethostname()} {os.getpid()}\n")
        if not hasattr(model, "encode_latents") or not hasattr(model, "decode_latents"):
            raise InputError(f"{type(model).__name__} has no encoder/decoder to export")
        _write_archive(model, claim / "saved")
        target = base / str(number)
        os.rename(claim / "saved", target)
    finally:
        shutil.rmtree(claim, ignore_errors=True)
    return target

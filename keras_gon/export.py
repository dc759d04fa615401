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

import errno
import os
import re
import shutil
import socket
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_gon.data.preprocessing import check_image_values, graph_check
from keras_gon.errors import InputError
from keras_gon.files import about_path

SERVING_METHOD = "tensorflow/serving/predict"
IMAGE_DTYPES = ("float32", "uint8")
"""The dtypes an export's image signatures take: float32 images in [0, 1], or uint8 grey
levels 0-255 (`keras_gon.data.preprocessing.check_image_values`'s rule)."""
MAX_SAMPLE_VALUES = 2**28
"""Most values (images x pixels x channels, 1 GiB as float32) one `sample` request returns."""


def _image_spec(model, dtype: str = "float32") -> tf.TensorSpec:
    # any height and width: requests are resized to the model's size in the graph
    return tf.TensorSpec((None, None, None, model.image_shape[-1]), dtype, name="images")


def _latent_spec(model) -> tf.TensorSpec:
    return tf.TensorSpec((None, model.latent_dim), tf.float32, name="latents")


def serving_endpoints(model, image_dtype: str = "float32") -> dict:
    """name -> (function, input signature) of every signature exported for `model`.

    `reconstruct` (images -> reconstructions, also `serving_default`),
    `encode` (images -> latents; for a GON the gradient at the origin, eq. 8,
    runs inside the graph) and `decode` (latents -> images); `sample` (count,
    seed -> images) for models with `sample_images` or `sample_latents`; `render` (latents,
    resolution -> images) for models with `render_latents`; `classify`
    (images -> class probabilities) for a `GONClassifier`. Everything runs
    in inference mode: no variable changes, no batch statistics. Images are
    `image_dtype` (`IMAGE_DTYPES`): float32 in [0, 1], or uint8 grey levels.
    """
    if image_dtype not in IMAGE_DTYPES:
        raise InputError(f"unknown image dtype {image_dtype!r}: expected one of {IMAGE_DTYPES}")
    if hasattr(model, "check_sampling_prior"):
        model.check_sampling_prior()  # a fitted prior that was never fitted: refused
    image_spec, latent_spec = _image_spec(model, image_dtype), _latent_spec(model)

    def checked(tensor, spec):
        # The signature's static shape is not enforced when a SavedModel
        # signature is called: EnsureShape refuses a wrong rank or channel
        # count at run time with a message naming both shapes. Values are
        # checked as the Python API checks them (`check_image_values`, one
        # function): INVALID_ARGUMENT, `assertion failed: [keras_gon.InputError:
        # <reason>]`, instead of NaN latents or silently clipped pixels.
        tensor = tf.ensure_shape(tensor, spec.shape, name=f"check_{spec.name}")
        if spec.name == "images":  # any size; float32 in [0, 1] or uint8 0-255
            shape = tf.shape(tensor)
            some = (shape[0] > 0) & (shape[1] > 0) & (shape[2] > 0)
            with tf.control_dependencies(  # (as the Python API: no empty batch nor image)
                [graph_check(some, "images must hold at least one image of non-zero size")]
            ):
                tensor = tf.identity(tensor)
            return model.prepare_images(check_image_values(tensor, "images"))
        finite = tf.reduce_all(tf.math.is_finite(tensor))
        with tf.control_dependencies(
            [graph_check(finite, f"{spec.name} contain NaN or infinite (non-finite) values")]
        ):
            return tf.identity(tensor)

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
            values = tf.cast(count, "int64") * int(np.prod(model.image_shape))
            with tf.control_dependencies(
                [
                    graph_check(count >= 1, "sample: count must be >= 1, got ", count),
                    graph_check(
                        values <= MAX_SAMPLE_VALUES,
                        "sample: count ",
                        count,
                        f" makes more than {MAX_SAMPLE_VALUES:,} values: ask for fewer",
                    ),
                    graph_check(seed >= 0, "sample: seed must be >= 0, got ", seed),
                ]
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


def export_saved_model(
    model: keras.Model, path: str | os.PathLike, image_dtype: str = "float32"
) -> Path:
    """Writes `model` as a SavedModel at `path` with named serving signatures.

    Each image signature takes NHWC images of any height and width (e.g. a
    28x28 digit for a 32x32 model), prepared as `model.prepare_images` does:
    float32 in [0, 1] (`image_dtype="float32"`), or uint8 grey levels 0-255
    (`"uint8"`); latents are (batch, latent_dim). A wrong rank or channel count,
    a non-finite value or a pixel value outside the range is refused with
    INVALID_ARGUMENT and a message naming it, as the Python API refuses it. The endpoints
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
        _write_archive(model, staging, image_dtype, path)
        os.rename(staging, path)  # refuses a non-empty existing `path`
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


FILESYSTEM_FAILURES = {
    "No space left on device": errno.ENOSPC,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
    "Disk quota exceeded": errno.EDQUOT,
    "Not a directory": errno.ENOTDIR,
}
"""TensorFlow's file errors (tf.errors.OpError) by the strerror in their message."""


def _write_archive(
    model: keras.Model, path: Path, image_dtype: str = "float32", target: Path | None = None
) -> None:
    """Writes the SavedModel of `model` at `path`; a full disk or a read-only folder is an
    `OSError` naming `target` (the version the user asked for), whichever writes it."""
    model = _serving_copy(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, signature) in serving_endpoints(model, image_dtype).items():
        archive.add_endpoint(name=name, fn=function, input_signature=signature)
    try:
        archive.write_out(str(path), verbose=False)
    except OSError as error:
        raise about_path(error, target or path) from None
    except tf.errors.OpError as error:
        code = next((c for text, c in FILESYSTEM_FAILURES.items() if text in str(error)), None)
        if code is None:
            raise
        raise OSError(code, os.strerror(code), str(target or path)) from None


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
    return (
        [
            int(child.name)
            for child in base.iterdir()
            if child.is_dir() and re.fullmatch(r"\d+", child.name)
        ]
        if base.is_dir()
        else []
    )


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


def export_version(
    model: keras.Model, base: str | os.PathLike, image_dtype: str = "float32"
) -> Path:
    """Exports `model` as the next version under `base`, safely beside other exports.

    Claims the number with an atomic `mkdir` of `base/.claim-<n>` (another
    export that computed the same number takes the next), writes the
    SavedModel inside the claim and renames it to `base/<n>` when it is
    complete. Returns the version folder. `image_dtype` as `export_saved_model`.
    """
    base = Path(base)
    if image_dtype not in IMAGE_DTYPES:
        raise InputError(f"unknown image dtype {image_dtype!r}: expected one of {IMAGE_DTYPES}")
    if not hasattr(model, "encode_latents") or not hasattr(model, "decode_latents"):
        raise InputError(f"{type(model).__name__} has no encoder/decoder to export")
    created = [folder for folder in (base, *base.parents) if not folder.exists()]
    try:
        base.mkdir(parents=True, exist_ok=True)
        return _export_next_version(model, base, image_dtype)
    except BaseException:
        for folder in created:  # the folders this export made, if it leaves them empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _export_next_version(model: keras.Model, base: Path, image_dtype: str) -> Path:
    """`export_version` in an existing `base`."""
    remove_stale_claims(base)
    number = int(next_version_dir(base).name)
    while True:
        claim = base / f".claim-{number}"
        try:
            claim.mkdir()
        except FileExistsError:
            number += 1
            continue
        except OSError as error:  # a read-only or full base: name it, not the claim
            raise about_path(error, base) from None
        if (base / str(number)).exists():  # finished since we looked
            shutil.rmtree(claim, ignore_errors=True)
            number += 1
            continue
        break
    try:
        (claim / "owner").write_text(f"{socket.gethostname()} {os.getpid()}\n")
        target = base / str(number)
        _write_archive(model, claim / "saved", image_dtype, target)
        os.rename(claim / "saved", target)
    finally:
        shutil.rmtree(claim, ignore_errors=True)
    return target

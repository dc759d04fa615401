"""Spherical interpolation between latents, and interpolation grids (paper fig. 6)."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_gon.errors import InputError

# Below this sin(angle), a and b are treated as parallel and interpolated linearly.
_PARALLEL_SINE = 1e-6


def _check_vectors(value, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} cannot be converted to an array") from None
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise InputError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.ndim == 0:
        raise InputError(f"{name} must have a last (latent) axis, got a scalar")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values")
    return array


def slerp(a, b, t):
    """Spherical linear interpolation from `a` (t = 0) to `b` (t = 1) (paper fig. 6).

    `slerp(a, b, t) = sin((1 - t) ω) / sin ω · a + sin(t ω) / sin ω · b`, with ω
    the angle between `a` and `b`: it follows the great circle between their
    directions, with a norm interpolated between theirs. Where a and b are
    (anti)parallel or zero (sin ω < 1e-6), it is the linear interpolation.
    t = 0 gives `a` and t = 1 gives `b` exactly.

    Args:
        a, b: latents `(..., latent_dim)` of broadcastable shapes.
        t: a number, or an array broadcast against the leading axes of a
            and b (e.g. a and b `(pairs, 1, d)` with t `(steps,)` give
            `(pairs, steps, d)`).

    Returns:
        The interpolated latents, float32 (float64 if a or b is float64).
    """
    a = _check_vectors(a, "a")
    b = _check_vectors(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise InputError(f"a and b have different latent sizes: {a.shape} and {b.shape}")
    t = np.asarray(t)
    if t.dtype.kind not in "fiu" or t.dtype == np.bool_ or not np.all(np.isfinite(t)):
        raise InputError("t must be finite numbers")
    dtype = "float64" if np.float64 in (a.dtype, b.dtype) else "float32"
    try:
        np.broadcast_shapes(a.shape[:-1], b.shape[:-1], t.shape)
    except ValueError:
        raise InputError(
            f"a {a.shape}, b {b.shape} and t {t.shape} do not broadcast (t broadcasts "
            "against the leading axes of a and b)"
        ) from None
    a = ops.convert_to_tensor(a, dtype=dtype)
    b = ops.convert_to_tensor(b, dtype=dtype)
    t = ops.expand_dims(ops.convert_to_tensor(t, dtype=dtype), -1)

    norm_a = ops.sqrt(ops.sum(a * a, axis=-1, keepdims=True))
    norm_b = ops.sqrt(ops.sum(b * b, axis=-1, keepdims=True))
    denominator = norm_a * norm_b
    safe_denominator = ops.where(denominator > 0, denominator, ops.ones_like(denominator))
    cosine = ops.clip(ops.sum(a * b, axis=-1, keepdims=True) / safe_denominator, -1.0, 1.0)
    omega = ops.arccos(cosine)
    sine = ops.sin(omega)
    parallel = (sine < _PARALLEL_SINE) | (denominator <= 0)
    safe_sine = ops.where(parallel, ops.ones_like(sine), sine)
    # Coefficients first: at t = 0 they are exactly 1 and 0 (sin ω / sin ω), so the
    # endpoints come back bit for bit.
    spherical = (ops.sin((1.0 - t) * omega) / safe_sine) * a + (ops.sin(t * omega) / safe_sine) * b
    linear = (1.0 - t) * a + t * b
    return ops.where(parallel, linear, spherical)


def interpolation_grid(model, images_a, images_b, steps: int = 8, resolution=None) -> np.ndarray:
    """Images decoded along slerp(z_a, z_b, t) for t in linspace(0, 1, steps) (fig. 6).

    Args:
        model: a GON with `encode` and `render` (e.g. `keras_gon.ImplicitGON`),
            or `decode` (decoded at its own resolution).
        images_a, images_b: two batches of `pairs` images each.
        steps: images per row, endpoints included (>= 2).
        resolution: decoding resolution (`render`); the model's by default.

    Returns:
        float32 array `(pairs, steps, height, width, channels)`: row i goes
        from the decoding of images_a[i] to that of images_b[i].
    """
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise InputError(f"steps must be an integer >= 2, got {steps!r}")
    z_a = np.asarray(model.encode(images_a))
    z_b = np.asarray(model.encode(images_b))
    if z_a.shape != z_b.shape:
        raise InputError(
            f"images_a and images_b must hold the same number of images, got {len(z_a)} and {len(z_b)}"
        )
    latents = np.asarray(slerp(z_a[:, None, :], z_b[:, None, :], np.linspace(0.0, 1.0, steps)))
    flat = latents.reshape(-1, latents.shape[-1])
    if resolution is not None:
        if not hasattr(model, "render"):
            raise InputError(f"{type(model).__name__} cannot render at another resolution")
        images = np.asarray(model.render(flat, resolution))
    else:
        images = np.asarray(model.decode(flat))
    return images.reshape((len(z_a), steps) + images.shape[1:])

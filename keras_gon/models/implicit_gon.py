"""The implicit Gradient Origin Network: a SIREN over coordinates and latents (paper §3.4)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.errors import InputError
from keras_gon.layers.sine_dense import SineDense
from keras_gon.models.gradient_origin import GradientOriginModel
from keras_gon.models.latent_normal import LatentNormalMixin
from keras_gon.resources import check_weights
from keras_gon.validation import (
    check_image_shape,
    check_number,
    check_positive_int,
    check_seed,
)

# Evaluations of F (latents x coordinates) per call when rendering: bounds memory
# (65,536 x 256 hidden units x 4 bytes = 64 MiB per activation).
RENDER_CHUNK = 65_536
# Largest render side accepted (a 4096x4096 render is 16.8 million evaluations per image).
MAX_RESOLUTION = 4096
MAX_RENDER_VALUES = 2**28
"""Most values (latents x pixels x channels, 1 GiB as float32) one render returns."""


def check_render_size(batch: int, height: int, width: int, channels: int) -> None:
    """Refuses a render of more than `MAX_RENDER_VALUES` values (what `render_latents`, the
    exported `render` signature, refuses in the graph)."""
    if batch * height * width * channels > MAX_RENDER_VALUES:
        raise InputError(
            f"rendering {batch} latents at {height}x{width} makes more than "
            f"{MAX_RENDER_VALUES:,} values: send fewer latents or a lower resolution"
        )


def coordinate_grid(height: int, width: int) -> np.ndarray:
    """Pixel-centre coordinates of a `height x width` image: float32 (height * width, 2).

    Rows are (y, x) in row-major pixel order; both span the square [-1, 1]
    (pixel i of n has its centre at -1 + (2i + 1) / n), so grids of any
    resolution cover the same square and an image rendered at a higher
    resolution, area-averaged back, approximates the low-resolution one.
    """
    ys = (2.0 * np.arange(height) + 1.0) / height - 1.0
    xs = (2.0 * np.arange(width) + 1.0) / width - 1.0
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1)
    return grid.reshape(-1, 2).astype("float32")


def check_resolution(resolution) -> tuple[int, int]:
    """`(height, width)` of a render: an int (square) or a pair, each in [1, MAX_RESOLUTION]."""
    sizes = (resolution, resolution) if np.isscalar(resolution) else tuple(resolution)
    if len(sizes) != 2:
        raise InputError(f"resolution must be an int or (height, width), got {resolution!r}")
    checked = []
    for size in sizes:
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
            raise InputError(f"resolution must be positive integers, got {resolution!r}")
        if not 1 <= int(size) <= MAX_RESOLUTION:
            raise InputError(
                f"resolution must be between 1 and {MAX_RESOLUTION}, got {resolution!r}"
            )
        checked.append(int(size))
    return tuple(checked)


@keras.saving.register_keras_serializable(package="keras_gon")
class ImplicitGON(LatentNormalMixin, GradientOriginModel):
    """Implicit GON: F(c ⊕ z) is a SIREN mapping a coordinate c and a latent z to a pixel.

    An image is the function c -> x(c) sampled on the pixel grid C. Its
    latent is the negative gradient at the origin of the loss integrated over
    all coordinates (eq. 12), z = -∇z0 (1/|C|) Σ_c L(F(c ⊕ z0), x(c)), and F
    is trained on (1/|C|) Σ_c L(F(c ⊕ z), x(c)) through that gradient (eq. 8),
    as every GON. F takes any coordinates, so a latent can be rendered at any
    resolution (`render`, paper fig. 5 / appendix G).

    The default inner and outer losses are the per-example **mean** squared
    error over the grid ("mse"): the Riemann sum of eq. 12's integral over
    the square divided by its area, so the latent's scale does not depend on
    how many coordinates sample the image (its resolution, or a Monte Carlo
    subset). The authors' code sums over coordinates and averages over the
    batch (z scales as 1/batch size); here the inner loss is summed over the
    batch (each image's latent is the gradient of its own loss), and with the
    coordinate sum ("sse", step_size 1) z is 784x larger at 28x28, which
    trained worse here (benchmarks/RESULTS.md). Reported losses are then MSE
    per pixel.

    **Monte Carlo coordinates.** With `coordinate_fraction` < 1, each
    training step draws one random subset of round(fraction * H * W)
    coordinates (from a seeded `SeedGenerator`) and evaluates both the inner
    and the outer integral on it, scaled by H*W / subset size so that the
    subset's loss is an unbiased estimate of the full-grid loss (losses that
    sum over coordinates, i.e. "sse", "bce" and callables; "mse" averages and
    is used as is). Evaluation, encoding and rendering use every coordinate.

    **Sampling** (appendix D). `fit` keeps the mean and covariance of the
    latents of the last training steps (`keras_gon.callbacks.LatentStatistics`,
    added unless given) in non-trainable weights saved with the model;
    `sample(n, seed=...)` draws latents from that multivariate normal and
    decodes them.

    Example:

    ```python
    model = keras_gon.ImplicitGON(image_shape=(28, 28, 1), hidden_units=32, num_layers=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(train_ds, epochs=3)
    z = model.encode(x)
    big = model.render(z, 256)           # (batch, 256, 256, 1)
    samples = model.sample(16, seed=0)
    ```

    Args:
        image_shape: `(height, width, channels)` of the training images; the
            output channels of F are `channels`.
        latent_dim: latent size.
        hidden_units: units of every sine layer.
        num_layers: number of sine layers (the authors' `num_layers`: the
            first layer plus `num_layers - 1` hidden-to-hidden layers), then
            a linear output layer.
        w0: SIREN frequency factor ω0 of every sine layer.
        coordinate_fraction: fraction of the coordinates used per training
            step, in (0, 1]; 1 uses the full grid.
        **kwargs: options of `GradientOriginModel` (`inner_loss` and
            `outer_loss`, "mse" here, `num_steps`, `step_size`, `detach`,
            `origin_stddev`, `inner_batch_reduction`, `seed`) and
            `keras.Model` (`name`, ...).
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (28, 28, 1),
        latent_dim: int = 32,
        hidden_units: int = 256,
        num_layers: int = 4,
        w0: float = 30.0,
        coordinate_fraction: float = 1.0,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        hidden_units = check_positive_int(hidden_units, "hidden_units")
        num_layers = check_positive_int(num_layers, "num_layers")
        coordinate_fraction = check_number(
            coordinate_fraction,
            "coordinate_fraction",
            minimum=0.0,
            maximum=1.0,
            strict_minimum=True,
        )
        w0 = check_number(w0, "w0", minimum=0.0, strict_minimum=True)
        kwargs.setdefault("inner_loss", "mse")
        kwargs.setdefault("outer_loss", "mse")
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, **kwargs)
        first = (2 + self.latent_dim) * hidden_units  # coordinates and latent in
        check_weights(  # from the shapes, before any weight is made
            first
            + (num_layers - 1) * hidden_units**2
            + hidden_units * (num_layers + 1)
            + (hidden_units + 1) * image_shape[-1]
            + self.latent_dim * (self.latent_dim + 1),
            f"an ImplicitGON with latent_dim={self.latent_dim}, hidden_units={hidden_units}, "
            f"num_layers={num_layers}",
        )

        # === Config ===
        self.hidden_units = hidden_units
        self.num_layers = num_layers
        self.w0 = w0
        self.coordinate_fraction = coordinate_fraction

        # === Layers ===
        self.sine_layers = [
            SineDense(
                self.hidden_units,
                w0=self.w0,
                is_first=index == 0,
                dtype=self.dtype_policy,
                name=f"sine_dense_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.output_layer = SineDense(
            image_shape[-1],
            w0=self.w0,
            use_sine=False,
            dtype=self.dtype_policy,
            name="output_dense",
        )

        # === State ===
        height, width, _ = image_shape
        self.num_coordinates = height * width
        self.num_sampled_coordinates = max(
            1, int(round(self.coordinate_fraction * self.num_coordinates))
        )
        self.grid = coordinate_grid(height, width)
        # A stream of its own (seed + 1), so the origin noise does not depend on the fraction.
        self.coordinate_seed_generator = keras.random.SeedGenerator(
            None if self.seed is None else int(self.seed) + 1, name="coordinate_seed_generator"
        )
        self._step_coordinates = None  # the current train step's coordinate subset
        self.build()

    def build(self, input_shape=None):
        """Creates F's weights and the latent statistics; every shape is known from the config."""
        if self.built:
            return
        shape = (None, None, 2 + self.latent_dim)
        for layer in self.sine_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.output_layer.build(shape)
        dim = self.latent_dim
        self.add_latent_normal()  # appendix D: a normal fitted to recent training latents
        # Moments of the latest training step's latents, read by LatentStatistics.
        # (every replica computes the same all-gathered moments: keep the first's)
        self.step_latent_count = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            name="step_latent_count",
            aggregation="only_first_replica",
        )
        self.step_latent_mean = self.add_weight(
            shape=(dim,),
            initializer="zeros",
            trainable=False,
            name="step_latent_mean",
            aggregation="only_first_replica",
        )
        self.step_latent_scatter = self.add_weight(
            shape=(dim, dim),
            initializer="zeros",
            trainable=False,
            name="step_latent_scatter",
            aggregation="only_first_replica",
        )
        self.built = True

    # --- F -----------------------------------------------------------------------

    def decode_coordinates(self, latents, coordinates):
        """F(c ⊕ z) for every latent and coordinate: (batch, num_coordinates, channels).

        Graph-level (no input checks). `latents` is (batch, latent_dim),
        `coordinates` (num_coordinates, 2) in [-1, 1]: the output is F's raw
        (unclipped) value, what the losses compare with the pixels.
        """
        latents = tf.convert_to_tensor(latents, dtype=self.compute_dtype)
        coordinates = tf.cast(coordinates, self.compute_dtype)
        # The first layer takes c ⊕ z as two broadcast parts: the same product
        # as the concatenation, without building the (batch, n, 2 + latent_dim)
        # input (faster: benchmarks/RESULTS.md).
        hidden = self.sine_layers[0]([coordinates[None], latents[:, None, :]])
        for layer in self.sine_layers[1:]:
            hidden = layer(hidden)
        return self.output_layer(hidden)

    def decode_latents(self, latents, training=False, inner_pass=False):
        """F on the training grid, as images (batch, height, width, channels), unclipped."""
        height, width, channels = self.image_shape
        values = self.decode_coordinates(latents, self.grid)
        return tf.reshape(values, (-1, height, width, channels))

    # --- losses on the grid (eq. 12), or on the step's coordinate subset ----------------

    def _coordinate_scale(self, loss) -> float:
        """H*W / subset size for losses summed over coordinates; 1 for the mean squared error."""
        if loss is gon_losses.mean_squared_error:
            return 1.0
        return self.num_coordinates / self.num_sampled_coordinates

    def _grid_losses(self, loss, data, latents, training):
        indices = self._step_coordinates if training else None
        if indices is None:
            return loss(data, self.decode_latents(latents, training=training))
        channels = self.image_shape[-1]
        pixels = tf.gather(tf.reshape(data, (-1, self.num_coordinates, channels)), indices, axis=1)
        values = self.decode_coordinates(latents, tf.gather(self.grid, indices))
        per_example = loss(pixels, values)
        return per_example * tf.cast(self._coordinate_scale(loss), per_example.dtype)

    def inner_losses(self, data, latents, training=False):
        return self._grid_losses(self.inner_loss, data, latents, training)

    def inner_losses_apply_inner_loss(self, training: bool) -> bool:
        """On the whole grid (not a training step's coordinate subset), the inner loss is
        `inner_loss(x, decode_latents(z))`, as the shared origin computes it."""
        return not (training and self.coordinate_fraction < 1.0)

    # --- the shared origin: F(c ⊕ 0) is the same image for every example --------------

    def origin_is_shared(self, training: bool) -> bool:
        """A SIREN treats examples independently: F and its Jacobian at z0 = 0 are
        computed once (`linearize_decoder`) for the whole batch."""
        return True

    def linearize_decoder(self, latent, training=False):
        """F(c ⊕ latent) on the grid and its Jacobian in the latent, in one forward pass:
        `(outputs (1, H, W, C), jacobian (latent_dim, H, W, C))`, the identity's rows
        pushed through each sine layer's linearisation (`SineDense.linearize`)."""
        height, width, channels = self.image_shape
        coordinates = tf.cast(self.grid, self.compute_dtype)[None]  # (1, n, 2)
        latent = tf.cast(latent, self.compute_dtype)[:, None, :]  # (1, 1, latent_dim)
        identity = tf.eye(self.latent_dim, dtype=self.compute_dtype)[:, None, :]  # (K, 1, d)
        hidden, tangents = self.sine_layers[0].linearize([coordinates, latent], [None, identity])
        for layer in self.sine_layers[1:]:
            hidden, tangents = layer.linearize(hidden, tangents)
        outputs, tangents = self.output_layer.linearize(hidden, tangents)
        return (
            tf.reshape(outputs, (1, height, width, channels)),
            tf.reshape(tangents, (self.latent_dim, height, width, channels)),
        )

    def outer_losses(self, data, latents, training=False):
        return self._grid_losses(self.outer_loss, data, latents, training)

    def outer_terms(self, data, latents, training=False) -> dict:
        """The outer loss on the grid (or the step's subset); the clipped reconstructions
        too when `compile(metrics=...)` asked for metrics (a second pass over the grid)."""
        terms = {"loss": self.outer_losses(data, latents, training=training)}
        if self.compiled_metrics_container() is not None:
            reconstructions = self.decode_latents(latents, training=training)
            terms["reconstructions"] = tf.clip_by_value(reconstructions, 0.0, 1.0)
        return terms

    def compile(self, optimizer="adam", *, metrics=None, **kwargs):
        """`LatentModel.compile`; `metrics` need whole images, so every coordinate."""
        if metrics and self.coordinate_fraction < 1.0:
            raise InputError(
                "compile(metrics=...) compares whole reconstructions with the images: it needs "
                f"coordinate_fraction=1 (this model trains on {self.coordinate_fraction:g})"
            )
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def _sample_coordinates(self):
        """A random subset of the grid's coordinate indices (sorted), one per train step."""
        permutation = keras.random.shuffle(
            tf.range(self.num_coordinates), seed=self.coordinate_seed_generator
        )
        return tf.sort(permutation[: self.num_sampled_coordinates])

    def _record_latent_moments(self, latents):
        latents = tf.cast(latents, "float32")
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            latents = context.all_gather(latents, axis=0)  # the whole global batch's
        count = tf.cast(tf.shape(latents)[0], "float32")
        mean = tf.reduce_mean(latents, axis=0)
        centred = latents - mean
        self.step_latent_count.assign(count)
        self.step_latent_mean.assign(mean)
        self.step_latent_scatter.assign(tf.matmul(centred, centred, transpose_a=True))

    def compute_terms(self, data, training=False) -> dict:
        """The core's terms (eq. 12); a training step draws one coordinate subset for both
        passes and records its latents' moments (for `sample`)."""
        if training and self.coordinate_fraction < 1.0:
            self._step_coordinates = self._sample_coordinates()
        try:
            terms = super().compute_terms(data, training=training)
        finally:
            self._step_coordinates = None
        if training:
            self._record_latent_moments(tf.stop_gradient(terms["latents"]))
        return terms

    def default_jit_compile(self) -> bool:
        """No XLA by default: XLA's CPU sine and cosine are slower than TensorFlow's
        (benchmarks/RESULTS.md); pass `jit_compile=True` to use it (e.g. on a GPU)."""
        return False

    def training_callbacks(self) -> list:
        """`keras_gon.callbacks.LatentStatistics`, which keeps the sampling normal (appendix D)."""
        from keras_gon.callbacks import LatentStatistics

        return [LatentStatistics()]

    # --- inference API ---------------------------------------------------------------

    def reconstruct_batch(self, inputs, training=None):
        """Reconstructions F(z(x)) on the grid, clipped to [0, 1] (what `predict` returns)."""
        return tf.clip_by_value(super().reconstruct_batch(inputs, training=training), 0.0, 1.0)

    def decode(self, latents):
        """F(latents) on the training grid: images (batch, H, W, C) clipped to [0, 1]."""
        return self.render(latents)

    def render(self, latents, resolution: int | tuple[int, int] | None = None):
        """Decodes latents at any resolution (super-resolution, paper fig. 5 / appendix G).

        Args:
            latents: (batch, latent_dim).
            resolution: an int (square) or `(height, width)`; the training
                image size by default.

        Returns:
            float32 images (batch, height, width, channels) clipped to [0, 1],
            F evaluated at the pixel centres of the requested grid over the
            same square [-1, 1]² as the training images.
        """
        z = self.check_latents(latents)
        height, width = self.image_shape[:2] if resolution is None else check_resolution(resolution)
        check_render_size(int(z.shape[0]), height, width, self.image_shape[-1])
        grid = coordinate_grid(height, width)
        fn = self.inference_function(
            "render", lambda z, c: tf.clip_by_value(self.decode_coordinates(z, c), 0.0, 1.0)
        )
        batch, count = int(z.shape[0]), grid.shape[0]
        latent_chunk = max(1, min(batch, RENDER_CHUNK // count))
        coordinate_chunk = max(1, RENDER_CHUNK // latent_chunk)
        rows = []
        for start in range(0, max(batch, 1), latent_chunk):
            z_chunk = z[start : start + latent_chunk]
            parts = [
                fn(z_chunk, tf.constant(grid[i : i + coordinate_chunk]))
                for i in range(0, count, coordinate_chunk)
            ]
            rows.append(tf.concat(parts, axis=1))
        values = tf.concat(rows, axis=0) if rows else tf.zeros((0, count, self.image_shape[-1]))
        return tf.reshape(values, (batch, height, width, self.image_shape[-1]))

    def render_latents(self, latents, resolution):
        """Graph-level `render` at a square `resolution` (a scalar tensor is fine; e.g. for export).

        The checks of `render` run in the graph (`check_render_size`'s bounds:
        InvalidArgumentError naming the problem), and the grid is decoded in
        chunks of about `RENDER_CHUNK` latent-coordinate pairs, as `render`
        does: memory stays bounded at any resolution.
        """
        from keras_gon.data.preprocessing import graph_check

        size = tf.cast(resolution, "int32")
        batch = tf.shape(latents)[0]
        channels = self.image_shape[-1]
        values_out = tf.cast(batch, "int64") * tf.cast(size, "int64") ** 2 * channels
        checks = [
            graph_check(
                (size >= 1) & (size <= MAX_RESOLUTION),
                f"resolution must be between 1 and {MAX_RESOLUTION}, got ",
                size,
            ),
            graph_check(
                values_out <= MAX_RENDER_VALUES,
                "rendering ",
                batch,
                " latents at ",
                size,
                "x",
                size,
                f" makes more than {MAX_RENDER_VALUES:,} values: "
                "send fewer latents or a lower resolution",
            ),
        ]
        with tf.control_dependencies(checks):
            size = tf.identity(size)
        # float64 as `coordinate_grid` computes it, then float32: the same coordinates.
        axis = (2.0 * tf.range(size, dtype="float64") + 1.0) / tf.cast(size, "float64") - 1.0
        ys, xs = tf.meshgrid(axis, axis, indexing="ij")
        grid = tf.cast(tf.reshape(tf.stack([ys, xs], axis=-1), (-1, 2)), "float32")
        count = tf.shape(grid)[0]
        chunk = tf.maximum(1, RENDER_CHUNK // tf.maximum(batch, 1))
        steps = (count + chunk - 1) // chunk

        def decode(index, parts):
            coordinates = grid[index * chunk : (index + 1) * chunk]
            values = tf.clip_by_value(self.decode_coordinates(latents, coordinates), 0.0, 1.0)
            return index + 1, parts.write(index, tf.transpose(values, (1, 0, 2)))

        parts = tf.TensorArray(
            self.compute_dtype,
            size=steps,
            infer_shape=False,
            element_shape=tf.TensorShape([None, None, channels]),
        )
        _, parts = tf.while_loop(lambda index, _: index < steps, decode, (0, parts))
        values = tf.transpose(parts.concat(), (1, 0, 2))  # (batch, size * size, channels)
        return tf.reshape(values, tf.stack([batch, size, size, channels]))

    # --- sampling (appendix D) ------------------------------------------------------

    def sample_latents(self, count, seed):
        """z ~ the fitted normal (`LatentNormalMixin.fitted_latents`), graph-level."""
        return self.fitted_latents(count, seed)

    def latent_moments(self, images):
        """The latents of a batch of prepared images, and no variance (appendix D's normal
        is fitted to the latents themselves; `fit_latent_statistics`)."""
        latents = self.encode_latents(images)
        return latents, tf.zeros_like(latents)

    def sample(
        self, n: int, seed: int | None = None, resolution: int | tuple[int, int] | None = None
    ):
        """`n` images decoded from latents ~ N(latent_mean, latent_covariance) (appendix D).

        The normal is fitted during `fit` to the latents of the last training
        steps (`keras_gon.callbacks.LatentStatistics`). The same seed gives
        the same samples; `resolution` as in `render`.
        """
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        seed = check_seed(seed)
        if not self.has_latent_statistics:
            raise InputError(
                "the model has no latent statistics to sample from: train it with fit() "
                "(keras_gon.callbacks.LatentStatistics) or call fit_latent_statistics(images)"
            )
        latents = self.sample_latents(int(n), seed)
        return self.render(latents.numpy(), resolution)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "hidden_units": self.hidden_units,
                "num_layers": self.num_layers,
                "w0": self.w0,
                "coordinate_fraction": self.coordinate_fraction,
            }
        )
        return config

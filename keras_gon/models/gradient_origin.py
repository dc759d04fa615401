"""The origin-gradient core shared by every GON variant (paper §3, eq. 8)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gon import losses as gon_losses
from keras_gon.distribute import batch_normal
from keras_gon.errors import InputError
from keras_gon.models.latent_model import LatentModel
from keras_gon.validation import check_choice, check_number, check_positive_int

INNER_BATCH_REDUCTIONS = ("sum", "mean")


SHARE_ORIGIN_CHOICES = ("auto", True, False, "reverse")
"""What `share_origin` takes (see `GradientOriginModel`)."""
SHARED_ORIGIN_TANGENTS_PER_EXAMPLE = 1.75
"""`share_origin="auto"` shares the origin in forward mode while its tangents are at most
this many per example of the batch, where the batched origin is the alternative (examples
coupled by batch statistics, or no reverse mode): where the two exact computations cost
about the same (benchmarks/RESULTS.md, "Shared or batched origin")."""
FORWARD_ORIGIN_TANGENTS_PER_EXAMPLE = 1.0
"""`share_origin="auto"` prefers the forward mode to the reverse mode of the shared origin
while its tangents are at most this many per example of the batch (benchmarks/RESULTS.md,
"Forward or reverse mode")."""
REFERENCE_BATCH_SIZE = 64
"""The batch size the cost rule assumes when a step's batch size is not static."""


@keras.saving.register_keras_serializable(package="keras_gon")
def check_share_origin(value):
    """`value` if it is one of `SHARE_ORIGIN_CHOICES` (a bool, numpy's too, or "auto" or
    "reverse"); anything else (1, None, "true", ...) is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value in SHARE_ORIGIN_CHOICES:
        return value
    raise InputError(f"unknown share_origin {value!r}: expected one of {SHARE_ORIGIN_CHOICES}")


class GradientOriginModel(LatentModel):
    """A `LatentModel` whose latents are negative loss gradients at the origin (eq. 8).

    For data x, the latent is found from the origin z0 (zeros):

        z = z0 - step_size * ∇z0 L_inner(x, F(z0)),

    repeated `num_steps` times from the new point, and F is trained on the
    outer loss L_outer(x, F(z)) through that gradient: the outer
    `tf.GradientTape` of `LatentModel.train_step` records the inner tape's
    gradient computation, so the weight update includes the second-order terms.

    Subclasses provide the decoder F by implementing
    `decode_latents(latents, training, inner_pass)` (`inner_pass` marks the
    passes at the origin and the inner steps), and may override
    `inner_losses` / `outer_losses` (e.g. the variational GON's ELBO).

    The inner loss is summed over the batch, so each example's latent is the
    gradient of its own loss: the same image gets the same latent whatever
    batch it arrives in. `inner_batch_reduction="mean"` reproduces the
    authors' code, where z scales as 1/batch size.

    **The shared origin.** When F(z0 = 0) and its Jacobian are the same for
    every example (the decoder's rule, e.g. `ConvDecoder.examples_independent`,
    through `origin_is_shared`), the first inner step evaluates F and its
    Jacobian once (`linearize_decoder`) and the batch's latents are one matrix
    product: the same latents and gradients, fewer FLOPs. With batch
    statistics at the origin (every example the same), F has two Jacobians
    there, for moves of the whole batch and moves apart
    (`linearize_decoder_at_origin`). Where examples are independent the shared
    origin also has a reverse mode (`linearize_decoder_transpose`): F once at the
    origin, then the transpose of its Jacobian applied to every example's r_i,
    the backward pass of the batch without its forward pass. It turns itself off
    for a random origin and when a subclass overrides `decode_latents` or
    `inner_losses` below the class that defines `linearize_decoder` (the
    linearisation would no longer describe the inner pass);
    `share_origin=False` turns it off. Exact every way, the computations cost
    differently (`origin_method`): the forward mode pushes one tangent per latent
    dimension (two under batch statistics) through F, the reverse mode one
    cotangent per example, the batched origin a forward and a backward pass of
    every example. `share_origin="auto"` (the default) uses the forward mode while
    its tangents are at most `FORWARD_ORIGIN_TANGENTS_PER_EXAMPLE` times the batch
    size and the reverse mode beyond; where there is no reverse mode (batch
    statistics), the forward mode while its tangents are at most
    `SHARED_ORIGIN_TANGENTS_PER_EXAMPLE` times the batch size and the batched
    origin beyond (the batch size is a training batch's static size, else
    `REFERENCE_BATCH_SIZE`, so inference computes a latent the same way whatever
    the batch). True uses the forward mode whenever it is exact, "reverse" the
    reverse mode. A frozen origin (`freeze_origin`, for serving) is one matrix
    product and always used.

    Args:
        image_shape, latent_dim, outer_loss, outer_target, seed: as
            `LatentModel` (the outer loss is the per-example loss of the
            reconstruction from z; its batch mean is the training loss).
        inner_loss: per-example loss at the origin ("sse", "mse", "bce" or a
            callable `(y_true, y_pred) -> (batch,)`).
        num_steps: gradient steps from the origin (>= 1); all of them are
            differentiated through and optimised jointly.
        step_size: step size of each gradient step (1 for the paper's
            one-step GON, 0.1 for its 10-step one).
        detach: stop gradients through z (the paper's "detach" baseline).
        origin_stddev: in training, z0 ~ N(0, origin_stddev²) instead of zeros
            (appendix C); encoding at inference always starts at zeros.
        add_origin: whether the first step keeps z0: z = z0 - ∇z0 L (True,
            appendix C's variant (b)) or z = -∇z0 L (False, variant (a), the
            paper's main one in fig. 11a). The same when z0 = 0.
        inner_batch_reduction: "sum" (per-example latents) or "mean".
        share_origin: "auto" (default): evaluate F once at a shared origin when
            that is exact, in the cheaper mode (see above); True: in forward mode
            whenever it is exact; "reverse": in reverse mode whenever it is exact;
            False: always the batched origin.
    """

    def __init__(
        self,
        image_shape=(32, 32, 1),
        latent_dim: int = 32,
        inner_loss="sse",
        outer_loss="sse",
        num_steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        origin_stddev: float = 0.0,
        inner_batch_reduction: str = "sum",
        add_origin: bool = True,
        share_origin: bool | str = "auto",
        seed: int | None = None,
        outer_target: str = "input",
        **kwargs,
    ):
        super().__init__(
            image_shape=image_shape,
            latent_dim=latent_dim,
            outer_loss=outer_loss,
            outer_target=outer_target,
            seed=seed,
            **kwargs,
        )
        # === Config ===
        self.inner_loss = gon_losses.deserialize(inner_loss)
        self.num_steps = check_positive_int(num_steps, "num_steps")
        self.step_size = check_number(step_size, "step_size", minimum=0.0, strict_minimum=True)
        self.detach = bool(detach)
        self.origin_stddev = check_number(origin_stddev, "origin_stddev", minimum=0.0)
        self.inner_batch_reduction = check_choice(
            inner_batch_reduction, "inner_batch_reduction", INNER_BATCH_REDUCTIONS
        )
        self.add_origin = bool(add_origin)
        self.share_origin = check_share_origin(share_origin)
        # === State ===
        self._frozen_origin = None  # (F(0), J) fixed by `freeze_origin`

    metric_terms = ("inner_loss",)

    # --- what subclasses provide -------------------------------------------

    def decode_latents(self, latents, training=False, inner_pass: bool = False):
        """F(latents): the decoder's output that the losses compare with the data."""
        raise NotImplementedError(f"{type(self).__name__} must implement decode_latents")

    def inner_losses(self, data, latents, training=False):
        """Per-example inner loss L_inner(x, F(z)) at a point z of the inner steps."""
        return self.inner_loss(
            data, self.decode_latents(latents, training=training, inner_pass=True)
        )

    def outer_terms(self, data, latents, training=False) -> dict:
        """The outer loss L_outer(x, F(z)) per example at the final latent (eq. 8), under
        "loss", and the reconstructions F(z)."""
        reconstructions = self.decode_latents(latents, training=training, inner_pass=False)
        return {"loss": self.outer_loss(data, reconstructions), "reconstructions": reconstructions}

    def find_latents(self, images, training=False):
        """The origin gradient (`origin_latents`), and the inner loss at the origin to report."""
        latents, inner = self.origin_latents(images, training=training)
        return latents, {"inner_loss": inner}

    def encode_latents(self, images, training=False):
        """Graph-level encoder: the latents of a batch of images (no input checks)."""
        return self.origin_latents(images, training=training)[0]

    def xla_pays_on_accelerator(self) -> bool:
        """XLA except for the forward mode of independent examples, whose gain does not
        repay its compilation (`default_jit_compile`)."""
        return not (self.shares_origin_in_training() and not self.origin_couples_examples(True))

    def xla_fuses_on_cpu(self) -> bool:
        """The forward-mode shared origin under batch statistics: two tangents per latent
        dimension of small ops, which XLA fuses (`default_jit_compile`)."""
        return self.shares_origin_in_training() and self.origin_couples_examples(True)

    def origin_couples_examples(self, training: bool) -> bool:
        """Whether the shared origin's examples are coupled (batch statistics): then
        `linearize_decoder_at_origin` gives two Jacobians. False here."""
        return False

    # --- the origin gradient --------------------------------------------------

    def origin(self, batch_size, training=False):
        """z0: zeros, or N(0, origin_stddev²) samples in training (appendix C)."""
        shape = (batch_size, self.latent_dim)
        dtype = self.latent_dtype
        if training and self.origin_stddev > 0:
            return batch_normal(shape, self.seed_generator, stddev=self.origin_stddev, dtype=dtype)
        return tf.zeros(shape, dtype=dtype)

    def origin_latents(self, data, training=False):
        """z = z0 - step_size ∇z0 L_inner (eq. 8), `num_steps` times.

        Returns the latents and the per-example inner losses at the origin.
        Called inside an outer `tf.GradientTape`, the gradient computation is
        recorded, so the outer loss is differentiated through it (eq. 8).
        """
        latents = self.origin(tf.shape(data)[0], training=training)
        origin_loss = None
        first_step = 0
        frozen = self._frozen_origin is not None and not training
        # Training batches have a static size (full batches); inference decides for the
        # reference size, so an image's latent never depends on how a call was traced.
        batch_size = data.shape[0] if training else None
        method = (
            "forward"
            if frozen and self._shared_origin_is_exact(training)
            else (self.origin_method(training, batch_size=batch_size))
        )
        if method != "batched":
            gradient, origin_loss = self._shared_origin_gradient(
                data, training, reverse=method == "reverse"
            )
            latents = latents - self.step_size * tf.cast(gradient, latents.dtype)
            first_step = 1
        for step in range(first_step, self.num_steps):  # unrolled: num_steps is a Python int
            with tf.GradientTape() as tape:
                tape.watch(latents)
                per_example = self.inner_losses(data, latents, training=training)
                total = self._reduce_inner(per_example)
            gradient = tape.gradient(
                total, latents, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            if origin_loss is None:
                origin_loss = per_example
            start = latents if (step > 0 or self.add_origin) else tf.zeros_like(latents)
            latents = start - self.step_size * tf.cast(gradient, latents.dtype)
        if self.detach:
            latents = tf.stop_gradient(latents)
        return latents, origin_loss

    def freeze_origin(self) -> bool:
        """Computes F(0) and its Jacobian now, and uses them in every inference pass that
        shares the origin until `unfreeze_origin`.

        For a model whose weights no longer change (the copy a serving export writes):
        its encoder is then the inner loss's gradient at F(0) times J, one matrix
        product, the same latents without the decoder's linearisation per request.
        Call it eagerly. Returns False (and freezes nothing) where inference does not
        share the origin or its examples are coupled.
        """
        if not self._can_share_origin(False, cheaper=False) or self.origin_couples_examples(False):
            return False
        origin = tf.zeros((1, self.latent_dim), dtype=self.latent_dtype)
        single, jacobian = self.linearize_decoder(origin, training=False)
        self._frozen_origin = (tf.identity(single), tf.identity(jacobian))
        return True

    def unfreeze_origin(self) -> None:
        """Back to linearising the decoder in every pass (`freeze_origin`)."""
        self._frozen_origin = None

    def _reduce_inner(self, per_example):
        """The inner loss differentiated for the latents: summed (per-example latents) or averaged."""
        if self.inner_batch_reduction == "sum":
            return tf.reduce_sum(per_example)
        return tf.reduce_mean(per_example)

    def origin_is_shared(self, training: bool) -> bool:
        """True when F(z0 = 0) and its Jacobian are the same for every example
        (or, with batch statistics, its two Jacobians: `linearize_decoder_at_origin`).

        Then the first inner step evaluates F and its Jacobian once, at a
        single origin (`linearize_decoder`), instead of a forward and
        backward pass of the whole batch there: the same latents, fewer
        FLOPs (`_shared_origin_gradient`). Subclasses whose decoder treats
        examples independently at the origin (no batch statistics, no noise)
        and implement `linearize_decoder` return True; the base class does
        not know its decoder, so returns False.
        """
        return False

    def linearize_decoder(self, latent, training=False):
        """`(F(latent), J)` at one latent (1, latent_dim) of the inner pass.

        J is (latent_dim, *output_shape): row k is ∂F/∂z_k at `latent`.
        Provided by subclasses whose `origin_is_shared` can be True.
        """
        raise NotImplementedError(f"{type(self).__name__} does not linearise its decoder")

    def linearize_decoder_at_origin(self, latent, batch_size, training=False):
        """`(F(latent), J_mean, J_dev)` for a batch of `batch_size` copies of `latent`.

        To first order F(z_j) = F(latent) + J_mean z̄ + J_dev (z_j - z̄), z̄ the
        batch mean (each (latent_dim, *output_shape)). When examples are
        independent both are `linearize_decoder`'s Jacobian; a decoder with
        batch statistics overrides this (a common move changes them).
        """
        single, jacobian = self.linearize_decoder(latent, training=training)
        return single, jacobian, jacobian

    def linearize_decoder_transpose(self, latent, training=False):
        """`(F(latent), transpose)` at one latent (1, latent_dim) of the inner pass, the
        reverse mode of `linearize_decoder`: `transpose(cotangents)` maps cotangents
        (batch, *output_shape) of F's output to Jᵀ c (batch, latent_dim). Provided by
        subclasses whose `origin_transposes` can be True."""
        raise NotImplementedError(f"{type(self).__name__} does not transpose its decoder")

    def origin_transposes(self, training: bool) -> bool:
        """Whether the shared origin has a reverse mode (`linearize_decoder_transpose`) in
        this pass: False here; subclasses whose examples are independent at the origin
        and that implement it return True."""
        return False

    def shares_origin_in_training(self) -> bool:
        """Whether training steps evaluate F and its Jacobian once at a shared origin, in
        forward mode (see `origin_is_shared`; `origin_method` also names the reverse mode)."""
        return self._can_share_origin(True)

    def origin_method(self, training: bool, batch_size: int | None = None) -> str:
        """How the first inner step computes the latents of `batch_size` examples
        (`REFERENCE_BATCH_SIZE` if None): "forward" (the shared origin's Jacobian,
        `linearize_decoder`), "reverse" (the shared origin's transposed Jacobian,
        `linearize_decoder_transpose`) or "batched" (a forward and a backward pass of
        the batch). See the class docstring for the rule."""
        if not self._shared_origin_is_exact(training):
            return "batched"
        reverse = self.origin_transposes(training) and not self.origin_couples_examples(training)
        if self.share_origin == "reverse":
            return "reverse" if reverse else "batched"
        if self.share_origin is True:
            return "forward"
        batch_size = REFERENCE_BATCH_SIZE if batch_size is None else int(batch_size)
        limit = (
            FORWARD_ORIGIN_TANGENTS_PER_EXAMPLE if reverse else (SHARED_ORIGIN_TANGENTS_PER_EXAMPLE)
        )
        if self.origin_tangents(training) <= limit * batch_size:
            return "forward"
        return "reverse" if reverse else "batched"

    def _can_share_origin(
        self, training: bool, batch_size: int | None = None, cheaper: bool = True
    ) -> bool:
        """Whether the origin is shared: exact and allowed, and (with `cheaper`) in the
        forward mode that `origin_method` chooses for `batch_size` examples."""
        if not cheaper:
            return self._shared_origin_is_exact(training)
        return self.origin_method(training, batch_size=batch_size) == "forward"

    def _shared_origin_is_exact(self, training: bool) -> bool:
        """Whether sharing the origin is allowed and gives the batched origin's latents."""
        return bool(
            self.share_origin
            and self.origin_is_shared(training)
            and not (training and self.origin_stddev > 0)  # a random z0 differs per example
            and self._linearization_describes_inner_pass()
            and self.inner_losses_apply_inner_loss(training)
        )

    def origin_tangents(self, training: bool) -> int:
        """The tangents the shared origin pushes through F: one per latent dimension,
        two under batch statistics (`linearize_decoder_at_origin`)."""
        return self.latent_dim * (2 if self.origin_couples_examples(training) else 1)

    def inner_losses_apply_inner_loss(self, training: bool) -> bool:
        """Whether `inner_losses` is `inner_loss(x, decode_latents(z))` in this pass, which
        the shared origin evaluates on the linearised decoder: true where `inner_losses`
        is not overridden; a subclass that overrides it says when it still is."""
        return type(self).inner_losses is GradientOriginModel.inner_losses

    def _linearization_describes_inner_pass(self) -> bool:
        """False when `decode_latents` or `inner_losses` is overridden below `linearize_decoder`.

        The shared pass computes F(0) and its Jacobian with `linearize_decoder`
        and applies `inner_loss` to them: exact only while the inner pass is
        `inner_loss(x, decode_latents(z))` of the class that linearises.
        """
        mro = type(self).__mro__

        def definer(name):
            return next(cls for cls in mro if name in vars(cls))

        owners = [
            definer(name)
            for name in (
                "linearize_decoder",
                "linearize_decoder_at_origin",
                "linearize_decoder_transpose",
            )
        ]
        owner = owners[0]
        for other in owners[1:]:
            if issubclass(other, owner):  # the most derived
                owner = other
        return not any(
            definer(name) is not owner and issubclass(definer(name), owner)
            for name in ("decode_latents", "inner_losses")
        )

    def _shared_origin_gradient(self, data, training, reverse: bool = False):
        """∇z0 L_inner(x, F(z0)) per example, F linearised once at a single origin (eq. 8).

        With y0 = F(0) the same for every example, the gradient for example
        i is J^T r_i, J the Jacobian of F at 0 and r_i = ∂L_inner(x_i, y)/∂y
        at y0: one matrix product (batch, D) x (D, latent_dim) once J is
        known (forward mode), or, with `reverse`, J^T applied to the r_i
        through the transposed linearisation (`linearize_decoder_transpose`),
        instead of a forward and a backward pass of the whole batch at
        the origin. Every op is recorded by an enclosing outer tape, so the
        outer loss is differentiated through it as usual (eq. 8).
        Returns the gradients (batch, latent_dim) and the per-example inner losses.
        """
        origin = tf.zeros((1, self.latent_dim), dtype=self.latent_dtype)
        batch_size = tf.shape(data)[0]
        transpose = None
        if reverse:
            single, transpose = self.linearize_decoder_transpose(origin, training=training)
        elif self._frozen_origin is not None and not training:
            single, jacobian = self._frozen_origin
            deviation_jacobian = jacobian
        else:
            single, jacobian, deviation_jacobian = self.linearize_decoder_at_origin(
                origin, batch_size, training=training
            )
        outputs = tf.broadcast_to(single, tf.concat([[batch_size], tf.shape(single)[1:]], axis=0))
        per_example = self.inner_loss(data, outputs)
        output_gradients = gon_losses.output_gradient(self.inner_loss, data, outputs)
        if output_gradients is None:  # a loss of the user's: differentiated by a tape
            with tf.GradientTape() as loss_tape:
                loss_tape.watch(outputs)
                per_example = self.inner_loss(data, outputs)
                total = tf.reduce_sum(per_example)
            output_gradients = loss_tape.gradient(total, outputs)
        if self.inner_batch_reduction == "mean":
            output_gradients = output_gradients / tf.cast(batch_size, output_gradients.dtype)
        if transpose is not None:
            return transpose(output_gradients), per_example
        output_gradients = tf.reshape(output_gradients, (batch_size, -1))

        def times(rows, jacobian):
            return tf.matmul(
                rows,
                tf.reshape(tf.cast(jacobian, rows.dtype), (self.latent_dim, -1)),
                transpose_b=True,
            )

        if deviation_jacobian is jacobian:
            return times(output_gradients, jacobian), per_example
        # Batch statistics: ∂/∂z_i Σ_j L_j = J_meanᵀ r̄ + J_devᵀ (r_i - r̄), r̄ the batch mean.
        mean = tf.reduce_mean(output_gradients, axis=0, keepdims=True)
        gradients = times(output_gradients - mean, deviation_jacobian) + times(mean, jacobian)
        return gradients, per_example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "inner_loss": gon_losses.serialize(self.inner_loss),
                "num_steps": self.num_steps,
                "step_size": self.step_size,
                "detach": self.detach,
                "origin_stddev": self.origin_stddev,
                "inner_batch_reduction": self.inner_batch_reduction,
                "add_origin": self.add_origin,
                "share_origin": self.share_origin,
            }
        )
        return config

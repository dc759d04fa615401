"""Issue 7: keras-gon against a PyTorch GON written as the authors' code runs it, side by side.

In one process, on 32x32 MNIST from ../shared/data/mnist10k.npz (batch 64,
latent 32, width 16, Adam 1e-4 with epsilon 1e-8 on both sides):

- training: `keras_gon.GON` trained with `model.fit` (the library's
  defaults: the shared origin, which is faster without XLA on CPU) against an eager
  PyTorch GON step (zeros latent with requires_grad, `torch.autograd.grad(create_graph=True)`, Adam), with the
  same architecture as keras-gon's decoder: per-example layer norm over
  (C, H, W) with per-channel affine (`nn.GroupNorm(1, C)` ≙ keras-gon's
  normalization="layer"), ELU, PyTorch's default init; and the paper's
  BatchNorm (`nn.BatchNorm2d` ≙ normalization="batch"). Both minimise the
  same objective: the inner SSE summed over the batch (keras-gon's
  per-example latents; the authors average it, which only rescales z) and
  the outer SSE per image averaged over the batch. Then the variational and
  implicit GON, when `keras_gon.VariationalGON` / `keras_gon.ImplicitGON`
  exist. Keras and PyTorch repeats alternate (A B A B ...), so machine load
  affects both alike; the figure is the median steps/s over the repeats
  after a warm-up (which includes XLA compilation for Keras).
- held-out SSE per image of both after the same number of steps (encode and
  decode at inference: eval mode / training=False).
- encode throughput (images/s, batch 256): `model.encode` (in-memory, with
  its input checks), the exported SavedModel's "encode" signature, and
  PyTorch (gradient at the origin, no create_graph, eval mode).
- keras-gon options: XLA on/off, shared or batched origin, `steps_per_execution`,
  and the bare `train_step` in a `tf.function` without `fit` (what `fit` costs).
- peak memory, measured in fresh subprocesses that import only one
  framework: the process's peak RSS (VmHWM, including XLA compilation) and
  the memory of model + training (peak RSS sampled every 5 ms during timed
  steps, minus the RSS after importing the framework and loading the data).
- achieved GFLOP/s: FLOPs of the paper's step counted with the formulas of
  `torch.utils.flop_counter` on the PyTorch step (9 decoder forward passes of
  the batch), and of keras-gon's shared-origin step counted analytically in
  decoder forward passes of one sample (`keras_step_flops`), against the
  machine's peak.

Issue 30, `--grid`: the paper's settings, cell by cell. For every latent size
{32, 256, 512} and image shape {32x32 grey, 32x32 colour, 64x64 colour, 128x128
grey} (real images: mnist10k, CIFAR-10, CelebA, COIL-20; 512 in memory), batch 64,
width 16: keras-gon `model.fit` steps/s against the PyTorch twin with the same
architecture, loss and optimizer, for the GON (layer norm, the library default),
the autoencoder with the same decoder (`keras_gon.ConvAutoencoder`; PyTorch: the
mirrored conv encoder), the variational GON on the authors' BCE and on the
library's default discretised logistic (written in PyTorch too). Each cell runs
in a fresh subprocess that times every model round robin (A B C D ... per repeat,
the median after a warm-up), so the GON / AE ratio is paired too; then the peak
memory of each model and framework in fresh one-framework processes. The results
file is written after each cell and resumed (`--cells` runs a subset);
`--grid-report` writes the Markdown table and the plot from it.

Run (installs PyTorch from the `[bench]` extra):

    pip install -e ".[bench]"
    python benchmarks/speed.py --out benchmarks/speed_results.json
    python benchmarks/speed.py --grid                       # -> speed_grid.{json,md,png}
    python benchmarks/speed.py --grid --cells 256/64x64x3 --grid-models gon ae

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"
BATCH, LATENT, WIDTH, SIZE, LR, ADAM_EPSILON = 64, 32, 16, 32, 1e-4, 1e-8
ENCODE_BATCH = 256
IMPLICIT_HIDDEN, IMPLICIT_LAYERS = 32, 4

VARIANTS = {
    # name: (keras_gon class name, keras kwargs, torch builder kwargs)
    "gon-layer": ("GON", dict(normalization="layer"), dict(kind="gon", normalization="layer")),
    "gon-batch": ("GON", dict(normalization="batch"), dict(kind="gon", normalization="batch")),
    # likelihood "bce": the authors' binary cross-entropy on grey levels, as TorchGON computes it
    # (the library's default, a discretised logistic, is a different and costlier objective)
    "vgon-layer": (
        "VariationalGON",
        dict(normalization="layer", likelihood="bce"),
        dict(kind="vgon", normalization="layer"),
    ),
    "igon": (
        "ImplicitGON",
        dict(
            hidden_units=IMPLICIT_HIDDEN,
            num_layers=IMPLICIT_LAYERS,
            inner_loss="mse",
            outer_loss="mse",
        ),
        dict(kind="igon"),
    ),
}


def log(message: str) -> None:
    print(message, flush=True)


def load_level() -> float:
    return os.getloadavg()[0]


# --- data ---------------------------------------------------------------------------------


def load_arrays():
    """The pipeline's preprocessed images as numpy: x_train (8000, 32, 32, 1), x_test (2000, ...)."""
    from keras_gon.data import load_dataset

    train, test, _ = load_dataset(DATA, image_size=SIZE, batch_size=BATCH, shuffle_train=False)
    return np.concatenate(list(train.as_numpy_iterator())), np.concatenate(
        list(test.as_numpy_iterator())
    )


# --- PyTorch reference ----------------------------------------------------------------------


def torch_modules():
    import torch
    from torch import nn

    class TorchDecoder(nn.Module):
        """keras_gon.layers.ConvDecoder in PyTorch (the authors' Generator with ELU / a choice of norm).

        `output_log_scale`: 2 x channels linear outputs (the discretised logistic's location and
        log-scale), as ConvDecoder(output_log_scale=True); else a sigmoid image.
        """

        def __init__(
            self,
            latent_dim,
            width,
            channels=1,
            size=32,
            normalization="layer",
            output_log_scale=False,
        ):
            super().__init__()
            self.latent_dim = latent_dim
            n = int(math.log2(size // 4))
            filters = [width * 2 ** (n - 1 - i) for i in range(n)]
            filters.append(channels * (2 if output_log_scale else 1))
            layers, in_channels = [], latent_dim
            for index, out_channels in enumerate(filters):
                first = index == 0
                layers.append(
                    nn.ConvTranspose2d(
                        in_channels, out_channels, 4, 1 if first else 2, 0 if first else 1
                    )
                )
                if index < len(filters) - 1:
                    if normalization == "layer":
                        layers.append(nn.GroupNorm(1, out_channels, eps=1e-5))
                    else:
                        layers.append(nn.BatchNorm2d(out_channels))  # eps 1e-5, momentum 0.1
                    layers.append(nn.ELU())
                in_channels = out_channels
            if not output_log_scale:
                layers.append(nn.Sigmoid())
            self.main = nn.Sequential(*layers)

        def forward(self, latents):
            return self.main(latents.view(-1, self.latent_dim, 1, 1))

    class TorchEncoder(nn.Module):
        """keras_gon.layers.ConvEncoder in PyTorch: the decoder's mirror (stride-2 4x4 convs of
        widths w, 2w, ... down to 4x4, norm and ELU after each, a 4x4 "valid" conv to the output)."""

        def __init__(self, output_dim, width, channels=1, size=32, normalization="layer"):
            super().__init__()
            n = int(math.log2(size // 4))
            layers, in_channels = [], channels
            for index in range(n):
                out_channels = width * 2**index
                layers.append(nn.Conv2d(in_channels, out_channels, 4, 2, 1))
                if normalization == "layer":
                    layers.append(nn.GroupNorm(1, out_channels, eps=1e-5))
                else:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ELU())
                in_channels = out_channels
            layers.append(nn.Conv2d(in_channels, output_dim, 4, 1, 0))
            self.main = nn.Sequential(*layers)

        def forward(self, images):
            return self.main(images).flatten(1)

    class TorchVariationalDecoder(nn.Module):
        """keras_gon.VariationalGON's F: Dense -> (μ, log σ²) -> reparameterise -> ConvDecoder."""

        def __init__(
            self,
            latent_dim,
            width,
            normalization="layer",
            channels=1,
            size=32,
            output_log_scale=False,
        ):
            super().__init__()
            self.mean = nn.Linear(latent_dim, latent_dim)
            self.log_variance = nn.Linear(latent_dim, latent_dim)
            self.decoder = TorchDecoder(
                latent_dim,
                width,
                channels,
                size,
                normalization=normalization,
                output_log_scale=output_log_scale,
            )

        def forward(self, latents, sample=None):
            mean, log_variance = self.mean(latents), self.log_variance(latents)
            sample = self.training if sample is None else sample
            z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean) if sample else mean
            return self.decoder(z), mean, log_variance

    class SineLayer(nn.Module):
        def __init__(self, fan_in, units, first, sine=True, w0=30.0):
            super().__init__()
            self.linear = nn.Linear(fan_in, units)
            bound = 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / w0
            with torch.no_grad():
                self.linear.weight.uniform_(-bound, bound)
            self.sine, self.w0 = sine, w0

        def forward(self, x):
            x = self.linear(x)
            return torch.sin(self.w0 * x) if self.sine else x

    class TorchSiren(nn.Module):
        """keras_gon.ImplicitGON's F: a SIREN on coordinate ⊕ latent (the authors' implicit GON)."""

        def __init__(self, latent_dim, hidden, num_layers, size=32):
            super().__init__()
            layers = [SineLayer(2 + latent_dim, hidden, first=True)]
            layers += [SineLayer(hidden, hidden, first=False) for _ in range(num_layers - 1)]
            layers.append(SineLayer(hidden, 1, first=False, sine=False))
            self.net = nn.Sequential(*layers)
            centres = (2.0 * torch.arange(size) + 1.0) / size - 1.0
            grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), dim=-1).reshape(
                -1, 2
            )
            self.register_buffer("grid", grid)
            self.size = size

        def forward(self, latents):
            batch = latents.shape[0]
            coordinates = self.grid[None].expand(batch, -1, -1)
            inputs = torch.cat(
                [coordinates, latents[:, None, :].expand(-1, self.grid.shape[0], -1)], -1
            )
            return self.net(inputs).view(batch, 1, self.size, self.size)

    return TorchDecoder, TorchVariationalDecoder, TorchSiren, TorchEncoder


def torch_discretized_logistic_nll(x, outputs, channels):
    """keras_gon.losses.discretized_logistic_negative_log_likelihood in PyTorch (channels first):
    -log P(x) per example of 8-bit images, location and log-scale in `outputs`' 2C channels."""
    import torch
    from torch.nn import functional

    location, log_scale = outputs[:, :channels], outputs[:, channels:].clamp(min=-7.0)
    top = 255.0
    levels = torch.round(x.clamp(0.0, 1.0) * top)
    centered = levels / top - location
    inverse_scale = torch.exp(-log_scale)
    upper = inverse_scale * (centered + 0.5 / top)
    lower = inverse_scale * (centered - 0.5 / top)
    log_cdf_upper = upper - functional.softplus(upper)
    log_survival_lower = -functional.softplus(lower)
    delta = torch.sigmoid(upper) - torch.sigmoid(lower)
    middle = inverse_scale * centered
    log_density_mass = middle - log_scale - 2.0 * functional.softplus(middle) - math.log(top)
    log_bin = torch.where(delta > 1e-5, torch.log(delta.clamp(min=1e-12)), log_density_mass)
    log_probability = torch.where(
        levels < 0.5, log_cdf_upper, torch.where(levels > top - 0.5, log_survival_lower, log_bin)
    )
    return -log_probability.flatten(1).sum(1)


class TorchAutoencoder:
    """keras_gon.ConvAutoencoder's step in PyTorch: z = E(x), SSE(x, D(z)) per image, batch mean,
    Adam; E the mirrored conv encoder, D the GON's decoder."""

    def __init__(self, latent_dim, image_shape, normalization="layer", seed=0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        TorchDecoder, _, _, TorchEncoder = torch_modules()
        size, _, channels = image_shape
        self.encoder = TorchEncoder(latent_dim, WIDTH, channels, size, normalization)
        self.decoder = TorchDecoder(latent_dim, WIDTH, channels, size, normalization)
        self.F = nn.ModuleList([self.encoder, self.decoder])
        self.optimizer = torch.optim.Adam(self.F.parameters(), lr=LR, eps=ADAM_EPSILON)
        self.kind, self.torch = "ae", torch

    def step(self, x):
        loss = ((self.decoder(self.encoder(x)) - x) ** 2).flatten(1).sum(1).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


class TorchGON:
    """The GON step as the authors' PyTorch code runs it (eager), for one model kind."""

    def __init__(
        self,
        kind,
        normalization="layer",
        seed=0,
        latent_dim=LATENT,
        image_shape=(SIZE, SIZE, 1),
        likelihood="bce",
        step_size=None,
    ):
        import torch

        torch.manual_seed(seed)
        TorchDecoder, TorchVariationalDecoder, TorchSiren, _ = torch_modules()
        self.kind, self.latent_dim, self.likelihood = kind, latent_dim, likelihood
        size, _, channels = image_shape
        self.channels = channels
        if kind == "gon":
            self.F = TorchDecoder(latent_dim, WIDTH, channels, size, normalization=normalization)
        elif kind == "vgon":
            self.F = TorchVariationalDecoder(
                latent_dim,
                WIDTH,
                normalization=normalization,
                channels=channels,
                size=size,
                output_log_scale=likelihood == "discretized_logistic",
            )
        else:
            self.F = TorchSiren(latent_dim, IMPLICIT_HIDDEN, IMPLICIT_LAYERS)
        # keras_gon.VariationalGON's default step 1/64 (DEFAULT_STEP_SIZE); 1 for the others
        self.step_size = (
            step_size if step_size is not None else (1.0 / 64 if kind == "vgon" else 1.0)
        )
        self.optimizer = torch.optim.Adam(self.F.parameters(), lr=LR, eps=ADAM_EPSILON)
        self.torch = torch

    def per_example_losses(self, x, latents, sample=None):
        """Per-example inner loss (with the VGON's origin prior) and outer loss (SSE or -ELBO).

        The VGON's z' ~ q is sampled in training, and for the outer loss
        (`sample=True`) at evaluation too, as keras_gon.VariationalGON does.
        """
        torch = self.torch
        if self.kind == "igon":  # ImplicitGON's "mse": the mean over the grid (eq. 12)
            mse = ((self.F(latents) - x) ** 2).flatten(1).mean(1)
            return mse, mse
        if self.kind == "gon":
            sse = ((self.F(latents) - x) ** 2).flatten(1).sum(1)
            return sse, sse
        g, mean, log_variance = self.F(latents, sample=sample)
        if self.likelihood == "discretized_logistic":
            nll = torch_discretized_logistic_nll(x, g, self.channels)
        else:
            g = g.clamp(1e-7, 1 - 1e-7)
            nll = -(x * torch.log(g) + (1 - x) * torch.log(1 - g)).flatten(1).sum(1)
        kl = 0.5 * (log_variance.exp() + mean**2 - 1.0 - log_variance).sum(1)
        prior = 0.5 * (latents**2).sum(1) / 2.0 + 0.5 * self.latent_dim * math.log(
            2 * math.pi * 2.0
        )
        return nll + kl + prior, nll + kl

    def step(self, x):
        torch = self.torch
        z = torch.zeros(x.shape[0], self.latent_dim, requires_grad=True)
        inner, _ = self.per_example_losses(x, z)
        (grad,) = torch.autograd.grad(inner.sum(), [z], create_graph=True, retain_graph=True)
        z = -grad if self.step_size == 1.0 else -self.step_size * grad
        _, outer = self.per_example_losses(x, z, sample=True)
        loss = outer.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss

    def encode(self, x):
        torch = self.torch
        z = torch.zeros(x.shape[0], self.latent_dim, requires_grad=True)
        inner, _ = self.per_example_losses(x, z)
        (grad,) = torch.autograd.grad(inner.sum(), [z])
        return -self.step_size * grad

    def held_out_loss(self, x_test):
        """Mean per-image outer loss at inference (eval mode), encoding in batches of 256."""
        torch = self.torch
        self.F.eval()
        total = 0.0
        for start in range(0, len(x_test), ENCODE_BATCH):
            x = x_test[start : start + ENCODE_BATCH]
            z = self.encode(x)
            with torch.no_grad():
                _, outer = self.per_example_losses(x, z, sample=True)
            total += float(outer.sum())
        self.F.train()
        return total / len(x_test)


class AuthorsBatchNormGON(TorchGON):
    """The authors' own GON.py step, verbatim in substance (cwkx/GON): their Generator
    (BatchNorm, ELU, bias=True), zeros latent of shape (B, nz, 1, 1), the inner and outer
    losses ``((g - x)**2).sum(1).mean()`` (summed over channels, averaged over batch and
    pixels) and Adam(lr=1e-4) with PyTorch's defaults. The second PyTorch column of the
    paper-BatchNorm GON: the same network as TorchGON(normalization="batch"), their
    reductions."""

    def __init__(self, seed=0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        nz, ngf, nc = LATENT, WIDTH, 1
        self.kind, self.torch = "authors-gon", torch
        self.F = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=True),
            nn.BatchNorm2d(ngf * 4),
            nn.ELU(),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=True),
            nn.BatchNorm2d(ngf * 2),
            nn.ELU(),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=True),
            nn.BatchNorm2d(ngf),
            nn.ELU(),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=True),
            nn.Sigmoid(),
        )
        self.optimizer = torch.optim.Adam(lr=LR, params=self.F.parameters())

    def step(self, x):
        torch = self.torch
        z = torch.zeros(x.shape[0], LATENT, 1, 1).requires_grad_()
        g = self.F(z)
        inner_loss = ((g - x) ** 2).sum(1).mean()
        grad = torch.autograd.grad(inner_loss, [z], create_graph=True, retain_graph=True)[0]
        z = -grad
        g = self.F(z)
        outer_loss = ((g - x) ** 2).sum(1).mean()
        self.optimizer.zero_grad()
        outer_loss.backward()
        self.optimizer.step()
        return outer_loss

    def encode(self, x):
        torch = self.torch
        z = torch.zeros(x.shape[0], LATENT, 1, 1).requires_grad_()
        inner_loss = ((self.F(z) - x) ** 2).sum(1).mean()
        return -torch.autograd.grad(inner_loss, [z])[0]

    def per_example_losses(self, x, latents, sample=None):
        sse = ((self.F(latents) - x) ** 2).flatten(1).sum(1)
        return sse, sse


class TorchTrainer:
    def __init__(self, gon, x_train, seed=0):
        self.gon, self.x, self.rng = gon, x_train, np.random.default_rng(seed)
        self.order, self.position = self.rng.permutation(len(x_train)), 0

    def batch(self):
        if self.position + BATCH > len(self.order):
            self.order, self.position = self.rng.permutation(len(self.x)), 0
        index = self.order[self.position : self.position + BATCH]
        self.position += BATCH
        return self.x[self.gon.torch.as_tensor(index)]

    def run(self, steps):
        for _ in range(steps):
            loss = self.gon.step(self.batch())
        return float(loss.detach())


# --- keras-gon ---------------------------------------------------------------------------------


def keras_model(name, seed=0, jit_compile=None, steps_per_execution=1, share_origin=True):
    import keras

    import keras_gon

    class_name, kwargs, _ = VARIANTS[name]
    cls = getattr(keras_gon, class_name, None)
    if cls is None:
        return None
    keras.utils.set_random_seed(seed)
    if class_name == "ImplicitGON":
        model = cls(image_shape=(SIZE, SIZE, 1), latent_dim=LATENT, seed=seed, **kwargs)
    else:
        model = cls(
            image_shape=(SIZE, SIZE, 1), latent_dim=LATENT, width=WIDTH, seed=seed, **kwargs
        )
    model.share_origin = share_origin  # False: the batched origin pass, as the paper computes it
    model.compile(
        optimizer=keras.optimizers.Adam(LR, epsilon=ADAM_EPSILON),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


class KerasTrainer:
    """Times `model.fit` on the load_dataset pipeline, `steps` steps per call."""

    def __init__(self, model):
        from keras_gon.data import load_dataset

        self.model = model
        train, test, _ = load_dataset(DATA, image_size=SIZE, batch_size=BATCH, seed=0)
        self.train, self.test = train.repeat(), test

    def run(self, steps):
        history = self.model.fit(self.train, epochs=1, steps_per_epoch=steps, verbose=0)
        return history.history["loss"][-1]


class RawStepTrainer:
    """The model's train_step in one tf.function (XLA as compiled) on prefetched batches, without fit."""

    def __init__(self, model):
        import tensorflow as tf

        from keras_gon.data import load_dataset

        self.model = model
        train, _, _ = load_dataset(DATA, image_size=SIZE, batch_size=BATCH, seed=0)
        self.iterator = iter(train.repeat())
        model.optimizer.build(model.trainable_variables)
        self.step = tf.function(model.train_step, jit_compile=bool(model.jit_compile))

    def run(self, steps):
        for _ in range(steps):
            logs = self.step(next(self.iterator))
        return float(logs["loss"])


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def compare_training(name, x_train, x_test, args, results):
    import torch

    model = keras_model(name, seed=0, steps_per_execution=args.steps_per_execution)
    if model is None:
        log(f"[{name}] skipped: keras_gon.{VARIANTS[name][0]} does not exist (yet)")
        results["training"][name] = "skipped: not in keras_gon"
        return
    steps = args.steps if not name.startswith("igon") else max(10, args.steps // 2)
    keras_trainer = KerasTrainer(model)
    torch_gon = TorchGON(seed=0, **VARIANTS[name][2])
    torch_trainer = TorchTrainer(
        torch_gon, torch.as_tensor(x_train).permute(0, 3, 1, 2).contiguous()
    )
    # The paper-BatchNorm GON also runs against the authors' own script's step.
    authors_trainer = None
    if name == "gon-batch":
        authors_trainer = TorchTrainer(
            AuthorsBatchNormGON(seed=0), torch.as_tensor(x_train).permute(0, 3, 1, 2).contiguous()
        )
        authors_trainer.run(args.warmup)
    warmup_keras = timed(keras_trainer.run, args.warmup)
    warmup_torch = timed(torch_trainer.run, args.warmup)
    keras_rates, torch_rates, authors_rates = [], [], []
    for repeat in range(args.repeats):
        keras_rates.append(steps / timed(keras_trainer.run, steps))
        torch_rates.append(steps / timed(torch_trainer.run, steps))
        if authors_trainer:
            authors_rates.append(steps / timed(authors_trainer.run, steps))
        log(
            f"[{name}] repeat {repeat}: keras fit {keras_rates[-1]:.1f} steps/s, "
            f"torch {torch_rates[-1]:.1f} steps/s"
            + (f", authors' step {authors_rates[-1]:.1f} steps/s" if authors_rates else "")
            + f" (load {load_level():.2f})"
        )
    total_steps = args.warmup + args.repeats * steps
    keras_loss = model.evaluate(keras_trainer.test, verbose=0, return_dict=True)["loss"]
    torch_loss = torch_gon.held_out_loss(torch.as_tensor(x_test).permute(0, 3, 1, 2).contiguous())
    k, t = statistics.median(keras_rates), statistics.median(torch_rates)
    # Each repeat's keras / torch ratio: the two ran back to back, under about the same load.
    paired = statistics.median(a / b for a, b in zip(keras_rates, torch_rates))
    results["training"][name] = {
        "keras_fit_steps_per_s": k,
        "torch_steps_per_s": t,
        "ratio": k / t,
        "ratio_of_paired_repeats_median": paired,
        "paired_ratios": [a / b for a, b in zip(keras_rates, torch_rates)],
        "keras_repeats": keras_rates,
        "torch_repeats": torch_rates,
        "keras_warmup_s_incl_compile": warmup_keras,
        "torch_warmup_s": warmup_torch,
        "steps_trained": total_steps,
        "held_out_loss_keras": keras_loss,
        "held_out_loss_torch": torch_loss,
    }
    if authors_rates:
        a = statistics.median(authors_rates)
        results["training"][name].update(
            authors_step_steps_per_s=a,
            authors_step_repeats=authors_rates,
            ratio_to_authors_step=k / a,
            ratio_to_authors_step_paired_median=statistics.median(
                x / y for x, y in zip(keras_rates, authors_rates)
            ),
        )
        log(f"[{name}] authors' step {a:.1f} steps/s: keras fit / authors {k / a:.2f}x")
    log(
        f"[{name}] median: keras fit {k:.1f} steps/s, torch {t:.1f} steps/s, ratio {k / t:.2f}x "
        f"(median of the paired repeats' ratios {paired:.2f}x); "
        f"held-out loss per image after {total_steps} steps: keras {keras_loss:.2f}, torch {torch_loss:.2f}"
    )
    return model, torch_gon


def keras_options(x_train, args, results):
    """model.fit steps/s of the GON with XLA on/off, shared/batched origin and
    steps_per_execution, interleaved."""
    configs = [
        dict(jit_compile=None, steps_per_execution=1, share_origin=True),  # the library default
        dict(jit_compile=True, steps_per_execution=1, share_origin=True),
        dict(jit_compile=True, steps_per_execution=1, share_origin=False),  # the paper's step, XLA
        dict(jit_compile=False, steps_per_execution=1, share_origin=False),
    ]
    configs += [
        dict(jit_compile=None, steps_per_execution=s, share_origin=True) for s in args.spe_values
    ]
    trainers = {}
    for config in configs:
        model = keras_model("gon-layer", **config)
        key = (
            f"jit_compile={model.jit_compile}, steps_per_execution={config['steps_per_execution']}, "
            f"origin={'shared' if model.shares_origin_in_training() else 'batched'}"
        )
        trainers[key] = KerasTrainer(model)
        trainers[key].run(args.warmup)
    for jit_compile in (None, True):
        model = keras_model("gon-layer", jit_compile=jit_compile)
        key = f"bare train_step, no fit (jit_compile={model.jit_compile}, origin=shared)"
        trainers[key] = RawStepTrainer(model)
        trainers[key].run(args.warmup)
    rates = {key: [] for key in trainers}
    for _ in range(args.repeats):
        for key, trainer in trainers.items():
            rates[key].append(args.steps / timed(trainer.run, args.steps))
    for key, values in rates.items():
        results["keras_options"][key] = {
            "steps_per_s": statistics.median(values),
            "repeats": values,
        }
        log(f"[options] {key}: {statistics.median(values):.1f} steps/s (load {load_level():.2f})")


def compare_encode(model, torch_gon, x_test, args, results):
    import tensorflow as tf
    import torch

    from keras_gon.export import export_saved_model

    batches = [
        x_test[i : i + ENCODE_BATCH] for i in range(0, len(x_test) - ENCODE_BATCH + 1, ENCODE_BATCH)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        export_saved_model(model, Path(tmp) / "1")
        signature = tf.saved_model.load(str(Path(tmp) / "1")).signatures["encode"]
        tf_batches = [tf.constant(b) for b in batches]
        torch_batches = [torch.as_tensor(b).permute(0, 3, 1, 2).contiguous() for b in batches]
        torch_gon.F.eval()

        def keras_encode():
            for b in batches:
                model.encode(b).numpy()

        def saved_encode():
            for b in tf_batches:
                signature(images=b)["latents"].numpy()

        def torch_encode():
            for b in torch_batches:
                torch_gon.encode(b).numpy()

        runs = {
            "keras_encode_in_memory": keras_encode,
            "saved_model_encode": saved_encode,
            "torch_encode": torch_encode,
        }
        for fn in runs.values():  # warm-up (tracing)
            fn()
        rates = {key: [] for key in runs}
        images = len(batches) * ENCODE_BATCH
        for _ in range(args.repeats):
            for key, fn in runs.items():
                rates[key].append(images / timed(fn))
        torch_gon.F.train()
    summary = {key: statistics.median(v) for key, v in rates.items()}
    results["encode_images_per_s"] = {**summary, "repeats": rates, "batch": ENCODE_BATCH}
    log(
        "[encode, batch 256] images/s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in summary.items())
        + f"; SavedModel/torch {summary['saved_model_encode'] / summary['torch_encode']:.2f}x"
    )


def measure_cli(args, results):
    """Wall time of `keras-gon train gon --steps 20` as a user runs it (fresh process, the
    offline default data, a new run folder), and of `keras-gon --help`."""
    exe = Path(sys.executable).with_name("keras-gon")
    command = [str(exe) if exe.exists() else "keras-gon"]
    walls = {"train gon --steps 20": [], "--help": []}
    for _ in range(max(3, args.repeats // 2)):
        with tempfile.TemporaryDirectory() as tmp:
            for key, extra in (
                (
                    "train gon --steps 20",
                    ["train", "gon", "--steps", "20", "--out", str(Path(tmp) / "run")],
                ),
                ("--help", ["--help"]),
            ):
                start = time.perf_counter()
                done = subprocess.run(command + extra, capture_output=True, text=True)
                walls[key].append(time.perf_counter() - start)
                if done.returncode:
                    raise RuntimeError(
                        f"keras-gon {' '.join(extra)} failed:\n{done.stderr[-2000:]}"
                    )
    results["cli_wall_s"] = {
        k: {"median": statistics.median(v), "repeats": v} for k, v in walls.items()
    }
    log(
        "[cli] "
        + ", ".join(f"keras-gon {k}: {statistics.median(v):.2f} s" for k, v in walls.items())
    )


# --- FLOPs and peak ------------------------------------------------------------------------


def decoder_forward_flops() -> int:
    """Analytic FLOPs (2 per multiply-add) of the conv-transposes of one sample's forward pass."""
    n = int(math.log2(SIZE // 4))
    filters = [WIDTH * 2 ** (n - 1 - i) for i in range(n)] + [1]
    flops, size, channels = 0, 1, LATENT
    for out_channels in filters:
        flops += 2 * size * size * channels * out_channels * 16
        size, channels = (4 if size == 1 else 2 * size), out_channels
    return flops


def keras_step_flops(forward_per_sample: int) -> dict:
    """FLOPs of keras-gon's shared-origin GON step, in decoder forward passes of one sample (F1).

    Counted per pass (a backward pass costs one F1 per sample for the input
    gradient and one for the weight gradient; elementwise ops and
    normalisation are not counted, as for the PyTorch count):
    F(0) once (1), the Jacobian's tangent pass over the latent_dim rows of the
    identity (L), the outer forward pass (B), its backward pass to the
    latents and to the weights (2B), the backward pass of the tangent pass to
    the weights and its own inputs (2L) and of F(0) (2), plus the matmul
    (B, D) x (D, L) forming the latents and its two gradient matmuls.
    """
    passes = 1 + LATENT + BATCH + 2 * BATCH + 2 * LATENT + 2
    matmuls = 3 * 2 * BATCH * SIZE * SIZE * LATENT
    step = passes * forward_per_sample + matmuls
    return {
        "keras_step_flops": step,
        "keras_step_multiple_of_forward": step / (BATCH * forward_per_sample),
    }


def counted_step_flops() -> dict:
    """FLOPs of the PyTorch forward pass and GON step, counted per aten op.

    Uses the formulas of `torch.utils.flop_counter` (convolutions and their
    backward, matmuls) in a plain dispatch mode: `FlopCounterMode` itself
    cannot follow `torch.autograd.grad(inputs=...)`.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.flops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if func._overloadpacket in flop_registry:
                self.flops += flop_registry[func._overloadpacket](*args, **kwargs, out_val=out)
            return out

    gon = TorchGON("gon", "layer")
    x = torch.rand(BATCH, 1, SIZE, SIZE)
    with Counter() as counter:
        gon.F(torch.zeros(BATCH, LATENT))
    forward = counter.flops
    with Counter() as counter:
        gon.step(x)
    step = counter.flops
    return {
        "forward_flops_per_batch": forward,
        "step_flops": step,
        "step_multiple_of_forward": step / forward,
    }


def cpu_info() -> dict:
    info = {"model_name": platform.processor(), "cores": os.cpu_count()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["model_name"] = fields.get("Model name", info["model_name"])
        info["flags_fma_avx2_avx512"] = [
            f for f in ("fma", "avx2", "avx512f") if f in fields.get("Flags", "").split()
        ]
        bogomips = float(fields.get("BogoMIPS", "0"))
        info["clock_ghz_estimate"] = bogomips / 2000.0  # BogoMIPS = 2 x clock on x86
    except (OSError, subprocess.CalledProcessError, ValueError):
        info["clock_ghz_estimate"] = 0.0
    # AVX2 + FMA with two 256-bit FMA pipes (Zen 2/3, Haswell+): 2 x 8 lanes x 2 FLOPs.
    info["peak_gflops_fp32"] = info["cores"] * info["clock_ghz_estimate"] * 32
    return info


# --- memory (fresh subprocesses) -------------------------------------------------------------------


class RssSampler:
    def __init__(self):
        import psutil

        self.process, self.peak, self.running = psutil.Process(), 0, False

    def __enter__(self):
        self.baseline = self.process.memory_info().rss
        self.peak, self.running = self.baseline, True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would keep the parent's peak across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(framework: str, name: str, steps: int, images: str) -> dict:
    """Trains `steps` steps in this fresh process (one framework imported) and reports its memory."""
    import psutil

    if framework == "keras":
        import keras_gon  # noqa: F401  (TensorFlow, Keras)
        from keras_gon.data import load_dataset  # noqa: F401
    else:
        import torch  # noqa: F401
    x_train = np.load(images)
    rss_setup = psutil.Process().memory_info().rss
    if framework == "keras":
        trainer = KerasTrainer(keras_model(name))
    else:
        import torch

        torch.set_num_threads(os.cpu_count())
        torch_gon = TorchGON(seed=0, **VARIANTS[name][2])
        trainer = TorchTrainer(torch_gon, torch.as_tensor(x_train).permute(0, 3, 1, 2).contiguous())
    trainer.run(5)  # warm-up, compilation
    with RssSampler() as sampler:
        trainer.run(steps)
    return {
        "process_peak_rss_mib": peak_rss_mib(),
        "rss_after_import_and_data_mib": rss_setup / 2**20,
        "peak_rss_during_steps_mib": sampler.peak / 2**20,
        "model_and_training_mib": (sampler.peak - rss_setup) / 2**20,
        "growth_during_steps_mib": (sampler.peak - sampler.baseline) / 2**20,
    }


def measure_memory(results, steps, x_train):
    with tempfile.TemporaryDirectory() as tmp:
        images = str(Path(tmp) / "x_train.npy")
        np.save(images, x_train)
        for name in ("gon-layer", "gon-batch"):
            for framework in ("keras", "torch"):
                command = [
                    sys.executable,
                    __file__,
                    "--memory-child",
                    framework,
                    name,
                    "--steps",
                    str(steps),
                    "--images",
                    images,
                ]
                out = subprocess.run(command, capture_output=True, text=True)
                line = [s for s in out.stdout.splitlines() if s.startswith("MEMORY ")]
                if not line:
                    log(f"[memory] {framework} {name} failed: {out.stderr[-500:]}")
                    continue
                value = json.loads(line[-1][len("MEMORY ") :])
                results["memory_mib"][f"{name}/{framework}"] = value
                log(
                    f"[memory] {name} {framework}: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in value.items())
                )


# --- the grid (issue 30): latent x image shape x model, the paper's settings -----------------

GRID_LATENTS = (32, 256, 512)
GRID_IMAGES = ("32x32x1", "32x32x3", "64x64x3", "128x128x1")
GRID_MODELS = ("gon", "ae", "vgon", "vgon-dlogistic")
"""gon: keras_gon.GON (layer norm, the library default); ae: keras_gon.ConvAutoencoder (the same
decoder, the mirrored conv encoder); vgon: keras_gon.VariationalGON on the authors' BCE (the
objective of the PyTorch side); vgon-dlogistic: the VariationalGON's default discretised
logistic likelihood, against the same likelihood written in PyTorch."""
GRID_SOURCES = {
    "32x32x1": "../shared/data/mnist10k.npz (x_train)",
    "32x32x3": "CIFAR-10 train JPEGs (/work/scratch/data/cifar10/train/<class>/*.jpg)",
    "64x64x3": "CelebA JPEGs (/work/scratch/data/celeba), centre square resized",
    "128x128x1": "COIL-20 processed PNGs (/work/scratch/data/coil-20-proc), 128x128 grey",
}
SCRATCH_DATA = Path("/work/scratch/data")
GRID_TARGETS = {"gon_vs_torch": 1.5, "gon_vs_ae": 0.8, "vgon_vs_torch": 1.3}
GRID_VGON_TARGET_LATENTS = (32, 256)


def parse_image(image: str) -> tuple[int, int, int]:
    height, width, channels = (int(v) for v in image.split("x"))
    return height, width, channels


def grid_images(image: str, count: int) -> np.ndarray:
    """`count` real images at shape `image` ("HxWxC"), float32 in [0, 1], loaded with PIL."""
    from PIL import Image

    size, _, channels = parse_image(image)
    mode = "L" if channels == 1 else "RGB"
    if image == "32x32x1":
        with np.load(DATA) as data:
            raw = data["x_train"][:count]
        pictures = [Image.fromarray(a) for a in raw]
    else:
        if channels == 3 and size == 32:
            paths = sorted((SCRATCH_DATA / "cifar10" / "train").glob("*/*.jpg"))
            paths = paths[:: max(1, len(paths) // count)][:count]  # every class
        elif channels == 3:
            paths = sorted((SCRATCH_DATA / "celeba").glob("*.jpg"))[:count]
        else:
            paths = sorted((SCRATCH_DATA / "coil-20-proc").glob("*.png"))[::2][:count]
        pictures = [Image.open(path) for path in paths]
    arrays = []
    for picture in pictures:
        picture = picture.convert(mode)
        side = min(picture.size)
        left, top = (picture.size[0] - side) // 2, (picture.size[1] - side) // 2
        picture = picture.crop((left, top, left + side, top + side))
        picture = picture.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(picture, dtype=np.float32).reshape(size, size, channels) / 255.0)
    if len(arrays) < BATCH:
        raise RuntimeError(f"only {len(arrays)} images for {image}")
    return np.stack(arrays)


def grid_keras_model(
    model: str,
    latent: int,
    image: str,
    seed: int = 0,
    jit_compile=None,
    steps_per_execution: int = 1,
    **options,
):
    """The keras-gon model of a grid cell with the library's defaults, compiled as speed.py does."""
    import keras

    import keras_gon

    keras.utils.set_random_seed(seed)
    common = dict(image_shape=parse_image(image), latent_dim=latent, width=WIDTH, seed=seed)
    if model == "gon":
        instance = keras_gon.GON(**common, **options)
    elif model == "ae":
        instance = keras_gon.ConvAutoencoder(**common, **options)
    elif model == "vgon":
        instance = keras_gon.VariationalGON(likelihood="bce", **common, **options)
    elif model == "vgon-dlogistic":
        instance = keras_gon.VariationalGON(**common, **options)  # the default likelihood
    else:
        raise ValueError(model)
    instance.compile(
        optimizer=keras.optimizers.Adam(LR, epsilon=ADAM_EPSILON),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return instance


def grid_torch_model(model: str, latent: int, image: str, seed: int = 0):
    """The PyTorch twin of a grid cell: same architecture, loss and optimizer."""
    shape = parse_image(image)
    if model == "ae":
        return TorchAutoencoder(latent, shape, seed=seed)
    if model == "gon":
        return TorchGON("gon", seed=seed, latent_dim=latent, image_shape=shape)
    likelihood = "bce" if model == "vgon" else "discretized_logistic"
    return TorchGON("vgon", seed=seed, latent_dim=latent, image_shape=shape, likelihood=likelihood)


class KerasArrayTrainer:
    """Times `model.fit` on an in-memory tf.data pipeline (shuffled, full batches), `steps` a call."""

    def __init__(self, model, x):
        import tensorflow as tf

        self.model = model
        self.train = (
            tf.data.Dataset.from_tensor_slices(x)
            .shuffle(len(x), seed=0)
            .batch(BATCH, drop_remainder=True)
            .repeat()
            .prefetch(2)
        )

    def run(self, steps):
        history = self.model.fit(self.train, epochs=1, steps_per_epoch=steps, verbose=0)
        return history.history["loss"][-1]


def origin_path(model) -> str | None:
    """How a GradientOriginModel computes its training latents ("shared", "batched", or the
    library's names when it reports them), None for other models."""
    if not hasattr(model, "shares_origin_in_training"):
        return None
    if hasattr(model, "origin_method"):
        return model.origin_method(True, batch_size=BATCH)
    return "shared" if model.shares_origin_in_training() else "batched"


def grid_framework_worker(framework, cell, models, images, keras_options, torch_threads, pipe):
    """One framework's trainers for a cell, alone in a process: builds them, sends their
    details, then runs `(model, steps)` requests and sends back the seconds each took,
    until it receives None. Each framework's thread pools are alone in their process."""
    latent, image = cell.split("/")
    latent = int(latent)
    x = np.load(images)
    trainers, info = {}, {}
    if framework == "torch":
        import torch

        torch.set_num_threads(torch_threads or os.cpu_count())
        x_torch = torch.as_tensor(x).permute(0, 3, 1, 2).contiguous()
    for model in models:
        if framework == "keras":
            keras_model_ = grid_keras_model(model, latent, image, **keras_options)
            trainers[model] = KerasArrayTrainer(keras_model_, x)
            info[model] = {
                "keras_jit_compile": bool(keras_model_.jit_compile),
                "origin": origin_path(keras_model_),
                "keras_parameters": int(
                    sum(np.prod(w.shape) for w in keras_model_.trainable_weights)
                ),
            }
        else:
            trainers[model] = TorchTrainer(grid_torch_model(model, latent, image), x_torch)
            info[model] = {
                "torch_parameters": int(sum(p.numel() for p in trainers[model].gon.F.parameters()))
            }
    pipe.send(info)
    while (request := pipe.recv()) is not None:
        model, count = request
        pipe.send(timed(trainers[model].run, count))


def grid_cell_child(cell: str, images: str, models: list[str], args) -> dict:
    """Times every model of a cell, keras-gon `fit` and PyTorch, round robin (A B C D ... per
    repeat) after a warm-up, each repeat about `--grid-seconds` long; each framework runs in
    a worker process of its own (`grid_framework_worker`), idle while the other is timed,
    with a pause of 0.3 s before each request."""
    import multiprocessing

    keras_options = {} if args.keras_jit == "auto" else {"jit_compile": args.keras_jit == "on"}
    context = multiprocessing.get_context("spawn")
    workers, info = {}, {model: {} for model in models}
    for framework in ("keras", "torch"):
        pipe, child_pipe = context.Pipe()
        process = context.Process(
            target=grid_framework_worker,
            args=(framework, cell, models, images, keras_options, args.torch_threads, child_pipe),
            daemon=True,
        )
        process.start()
        workers[framework] = (process, pipe)
        for model, details in pipe.recv().items():
            info[model].update(details)

    def run(key, count):
        model, framework = key
        pipe = workers[framework][1]
        # Untimed: the other framework's idle threads stop spinning (OpenMP waits actively
        # for up to 200 ms after its work, which would slow the next repeat). Making
        # PyTorch's threads passive instead slowed its steps by 25-50 % at 32x32.
        time.sleep(0.3)
        pipe.send((model, count))
        return pipe.recv()

    try:
        return _time_cell(cell, models, args, info, run)
    finally:
        for process, pipe in workers.values():
            pipe.send(None)
            process.join(timeout=60)


def _time_cell(cell, models, args, info, run) -> dict:
    """The warm-up, calibration and repeats of `grid_cell_child`; `run(key, steps)` times
    `steps` steps of `key` = (model, framework) in its worker and returns the seconds."""
    keys = [(model, framework) for model in models for framework in ("keras", "torch")]
    warmup, steps = {}, {}
    for key in keys:
        warmup[key] = run(key, args.grid_warmup)  # tracing, XLA compilation
        calibration = run(key, args.grid_calibration) / args.grid_calibration
        steps[key] = int(
            min(
                args.grid_max_steps,
                max(args.grid_min_steps, round(args.grid_seconds / calibration)),
            )
        )
        log(
            f"  [{cell} {key[0]} {key[1]}] warm-up {warmup[key]:.1f} s, "
            f"{1 / calibration:.1f} steps/s -> {steps[key]} steps per repeat"
        )
    rates = {key: [] for key in keys}
    for repeat in range(args.grid_repeats):
        for key in keys:
            rates[key].append(steps[key] / run(key, steps[key]))
        log(
            f"  [{cell}] repeat {repeat}: "
            + ", ".join(f"{m} {f} {rates[(m, f)][-1]:.2f}" for m, f in keys)
            + f" (load {load_level():.2f})"
        )
    result = {}
    for model in models:
        k, t = rates[(model, "keras")], rates[(model, "torch")]
        result[model] = {
            **info[model],
            "keras_steps_per_s": statistics.median(k),
            "torch_steps_per_s": statistics.median(t),
            "ratio": statistics.median(k) / statistics.median(t),
            "ratio_paired_median": statistics.median(a / b for a, b in zip(k, t)),
            "ratio_best": max(k) / max(t),  # the fastest repeat of each, as timeit reports
            "keras_repeats": k,
            "torch_repeats": t,
            "keras_steps_per_repeat": steps[(model, "keras")],
            "torch_steps_per_repeat": steps[(model, "torch")],
            "keras_warmup_s": warmup[(model, "keras")],
            "torch_warmup_s": warmup[(model, "torch")],
        }
    if "gon" in models and "ae" in models:
        g, a = rates[("gon", "keras")], rates[("ae", "keras")]
        result["gon_over_ae"] = {
            "ratio": statistics.median(g) / statistics.median(a),
            "ratio_paired_median": statistics.median(x / y for x, y in zip(g, a)),
            "ratio_best": max(g) / max(a),
        }
    return result


def grid_memory_child(framework: str, cell: str, model: str, images: str, steps: int) -> dict:
    """Peak memory of one model of a cell trained in this fresh process (one framework)."""
    import psutil

    latent, image = cell.split("/")
    if framework == "keras":
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

        import keras_gon  # noqa: F401
    else:
        import torch

        torch.set_num_threads(os.cpu_count())
    x = np.load(images)
    rss_setup = psutil.Process().memory_info().rss
    if framework == "keras":
        trainer = KerasArrayTrainer(grid_keras_model(model, int(latent), image), x)
    else:
        x_torch = torch.as_tensor(x).permute(0, 3, 1, 2).contiguous()
        trainer = TorchTrainer(grid_torch_model(model, int(latent), image), x_torch)
    trainer.run(2)  # warm-up, compilation
    with RssSampler() as sampler:
        trainer.run(steps)
    return {
        "process_peak_rss_mib": peak_rss_mib(),
        "rss_after_import_and_data_mib": rss_setup / 2**20,
        "model_and_training_mib": (sampler.peak - rss_setup) / 2**20,
    }


class OtherLoad:
    """Samples, every `interval` seconds in a thread, the CPU used by every process that is
    neither this one nor its descendants (percent of one core, summed): how much the host's
    other work competed with a measurement. `take()` returns the mean and max since the last."""

    def __init__(self, interval: float = 2.0):
        import psutil

        self.psutil, self.interval, self.samples = psutil, interval, []
        self.processes, self.running = {}, True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _sample(self) -> float:
        me = self.psutil.Process()
        mine = {me.pid, *(child.pid for child in me.children(recursive=True))}
        total = 0.0
        for process in self.psutil.process_iter(["pid"]):
            if process.pid in mine:
                continue
            known = self.processes.setdefault(process.pid, process)
            try:
                total += known.cpu_percent(None)
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                self.processes.pop(process.pid, None)
        return total

    def _loop(self):
        self._sample()
        while self.running:
            time.sleep(self.interval)
            self.samples.append(self._sample())

    def take(self) -> dict:
        samples, self.samples = self.samples, []
        if not samples:
            return {"mean": 0.0, "max": 0.0, "samples": 0}
        return {"mean": statistics.mean(samples), "max": max(samples), "samples": len(samples)}

    def stop(self):
        self.running = False


def grid_cells(args) -> list[str]:
    if args.cells:
        return list(args.cells)
    return [f"{latent}/{image}" for latent in args.grid_latents for image in args.grid_images]


def write_json(path: Path, value) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, default=float))
    temporary.replace(path)


def child_json(command: list[str], prefix: str) -> dict | None:
    out = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith(prefix + " ")]
    if not lines:
        log(f"  child failed ({' '.join(command[2:])}): {out.stderr[-1500:]}")
        return None
    return json.loads(lines[-1][len(prefix) + 1 :])


def versions() -> dict:
    from importlib import metadata

    found = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "torch"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def run_grid(args) -> None:
    """Measures the grid's cells (skipping those already in `--grid-out` with every model
    asked for), each in fresh subprocesses, writing the results file after each cell."""
    out = args.grid_out
    results = json.loads(out.read_text()) if out.exists() else {}
    results.setdefault("cells", {})
    results.setdefault("runs", []).append(
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": cpu_info(),
            "versions": versions(),
            "load_average_at_start": os.getloadavg(),
            "setup": {
                "batch": BATCH,
                "width": WIDTH,
                "lr": LR,
                "adam_epsilon": ADAM_EPSILON,
                "repeats": args.grid_repeats,
                "seconds_per_repeat": args.grid_seconds,
                "warmup_steps": args.grid_warmup,
                "keras_jit": args.keras_jit,
                "sources": GRID_SOURCES,
            },
        }
    )
    write_json(out, results)
    cache = Path(tempfile.mkdtemp(prefix="gon-grid-"))
    other = OtherLoad()
    queue = list(grid_cells(args))
    retries = {}
    try:
        began = time.time()
        while queue:
            cell = queue.pop(0)
            if args.grid_budget and time.time() - began > args.grid_budget:
                log(f"[grid] {args.grid_budget:.0f} s budget spent: stopping before {cell}")
                break
            done = results["cells"].get(cell, {})
            models = [m for m in args.grid_models if args.redo or m not in done.get("models", {})]
            if not models:
                log(f"[grid] {cell}: already measured, skipped")
                continue
            if models != list(args.grid_models):  # a cell's models are timed together
                models = list(args.grid_models)
            image = cell.split("/")[1]
            images = cache / f"{image}.npy"
            if not images.exists():
                np.save(images, grid_images(image, args.grid_images_count))
            log(f"[grid] {cell}: {', '.join(models)} (load {load_level():.2f})")
            started = time.time()
            other.take()
            base = [sys.executable, __file__, "--images", str(images)]
            options = [
                "--grid-repeats",
                str(args.grid_repeats),
                "--grid-seconds",
                str(args.grid_seconds),
                "--grid-warmup",
                str(args.grid_warmup),
                "--grid-calibration",
                str(args.grid_calibration),
                "--grid-min-steps",
                str(args.grid_min_steps),
                "--grid-max-steps",
                str(args.grid_max_steps),
                "--keras-jit",
                args.keras_jit,
            ]
            if args.torch_threads:
                options += ["--torch-threads", str(args.torch_threads)]
            timing = child_json(
                base + options + ["--grid-child", cell, "--grid-models", *models], "GRID"
            )
            if timing is None:
                continue
            competing = other.take()
            entry = {
                "models": {m: timing[m] for m in models},
                "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "run": len(results["runs"]) - 1,
                "load_average_after": os.getloadavg(),
                "other_processes_cpu_percent": competing,
            }
            if competing["mean"] > args.grid_max_other_cpu:
                retries[cell] = retries.get(cell, 0) + 1
                log(
                    f"[grid] {cell}: other processes used {competing['mean']:.0f} % of a core "
                    f"on average (max {competing['max']:.0f} %) during the timing: "
                    + (
                        "measuring it again"
                        if retries[cell] <= args.grid_retries
                        else "kept, marked noisy"
                    )
                )
                if retries[cell] <= args.grid_retries:
                    queue.append(cell)
                    continue
                entry["noisy"] = True
            if "gon_over_ae" in timing:
                entry["gon_over_ae"] = timing["gon_over_ae"]
            if not args.skip_memory:
                for model in models:
                    for framework in ("keras", "torch"):
                        memory = child_json(
                            base
                            + [
                                "--grid-memory-child",
                                framework,
                                cell,
                                model,
                                "--grid-memory-steps",
                                str(args.grid_memory_steps),
                            ],
                            "MEMORY",
                        )
                        if memory:
                            entry["models"][model][f"memory_{framework}"] = memory
            entry["seconds"] = time.time() - started
            results["cells"][cell] = entry
            write_json(out, results)
            log(
                f"[grid] {cell} done in {entry['seconds']:.0f} s: "
                + ", ".join(f"{m} {v['ratio']:.2f}x" for m, v in entry["models"].items())
                + (
                    f", gon/ae {entry['gon_over_ae']['ratio']:.2f}x"
                    if "gon_over_ae" in entry
                    else ""
                )
            )
    finally:
        other.stop()
        for path in cache.glob("*"):
            path.unlink()
        cache.rmdir()
    results["runs"][-1]["load_average_at_end"] = os.getloadavg()
    write_json(out, results)


def grid_report(results: dict, markdown: Path, plot: Path | None) -> str:
    """The grid as Markdown tables (ratios and targets, steps/s, peak memory) and a plot."""
    cells = results["cells"]
    order = [f"{z}/{i}" for z in GRID_LATENTS for i in GRID_IMAGES if f"{z}/{i}" in cells]
    order += sorted(set(cells) - set(order))

    def model(cell, name):
        return cells[cell]["models"].get(name)

    def ratio(value, target=None):
        if value is None:
            return "-"
        text = f"{value['ratio']:.2f}x ({value['ratio_paired_median']:.2f}x"
        text += f", best {value['ratio_best']:.2f}x)" if "ratio_best" in value else ")"
        return f"**{text}**" if target is not None and value["ratio"] >= target else text

    lines = [
        "| latent | image | GON vs PyTorch (>= 1.5x) | GON vs AE (>= 0.8x) | "
        "VGON vs PyTorch, BCE (>= 1.3x at 32, 256) | VGON vs PyTorch, disc. logistic | "
        "AE vs PyTorch | GON origin, XLA |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for cell in order:
        latent, image = cell.split("/")
        gon, vgon = model(cell, "gon"), model(cell, "vgon")
        vgon_target = (
            GRID_TARGETS["vgon_vs_torch"] if int(latent) in GRID_VGON_TARGET_LATENTS else None
        )
        origin = f"{gon['origin']}, {'on' if gon['keras_jit_compile'] else 'off'}" if gon else "-"
        lines.append(
            f"| {latent} | {image} | {ratio(gon, GRID_TARGETS['gon_vs_torch'])} | "
            f"{ratio(cells[cell].get('gon_over_ae'), GRID_TARGETS['gon_vs_ae'])} | "
            f"{ratio(vgon, vgon_target)} | {ratio(model(cell, 'vgon-dlogistic'))} | "
            f"{ratio(model(cell, 'ae'))} | {origin} |"
        )
    lines += [
        "",
        "Steps/s (keras-gon `fit` / PyTorch), medians of the repeats; other processes' "
        "CPU during the cell's timing (percent of one core, mean / max):",
        "",
        "| latent | image | GON | AE | VGON, BCE | VGON, disc. logistic | other CPU |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for cell in order:
        latent, image = cell.split("/")
        values = []
        for name in ("gon", "ae", "vgon", "vgon-dlogistic"):
            m = model(cell, name)
            values.append(
                "-" if m is None else f"{m['keras_steps_per_s']:.2f} / {m['torch_steps_per_s']:.2f}"
            )
        competing = cells[cell].get("other_processes_cpu_percent")
        values.append(
            "-"
            if competing is None
            else f"{competing['mean']:.0f} / {competing['max']:.0f}"
            + (" (noisy)" if cells[cell].get("noisy") else "")
        )
        lines.append(f"| {latent} | {image} | " + " | ".join(values) + " |")
    if any("memory_keras" in m for c in cells.values() for m in c["models"].values()):
        lines += [
            "",
            "Peak memory (MiB, fresh process per model and framework: process peak RSS; "
            "in brackets model + training, the peak during steps minus the RSS after "
            "importing the framework and loading the images), keras-gon / PyTorch:",
            "",
            "| latent | image | GON | AE | VGON, BCE | VGON, disc. logistic |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for cell in order:
            latent, image = cell.split("/")
            values = []
            for name in ("gon", "ae", "vgon", "vgon-dlogistic"):
                m = model(cell, name)
                if m is None or "memory_keras" not in m or "memory_torch" not in m:
                    values.append("-")
                    continue
                k, t = m["memory_keras"], m["memory_torch"]
                values.append(
                    f"{k['process_peak_rss_mib']:.0f} ({k['model_and_training_mib']:.0f}) / "
                    f"{t['process_peak_rss_mib']:.0f} ({t['model_and_training_mib']:.0f})"
                )
            lines.append(f"| {latent} | {image} | " + " | ".join(values) + " |")
    text = "\n".join(lines) + "\n"
    markdown.write_text(text)
    if plot is not None:
        grid_plot(cells, order, plot)
    return text


def grid_plot(cells: dict, order: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("GON / PyTorch", lambda c: cells[c]["models"].get("gon"), GRID_TARGETS["gon_vs_torch"]),
        ("GON / AE (keras-gon)", lambda c: cells[c].get("gon_over_ae"), GRID_TARGETS["gon_vs_ae"]),
        (
            "VGON / PyTorch (BCE)",
            lambda c: cells[c]["models"].get("vgon"),
            GRID_TARGETS["vgon_vs_torch"],
        ),
        ("AE / PyTorch", lambda c: cells[c]["models"].get("ae"), None),
    ]
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True)
    positions = np.arange(len(order))
    for axis, (title, get, target) in zip(axes, panels):
        values = [get(c)["ratio"] if get(c) else np.nan for c in order]
        colours = ["tab:green" if target is None or v >= target else "tab:red" for v in values]
        axis.bar(positions, values, color=colours)
        if target is not None:
            axis.axhline(target, color="black", linestyle="--", linewidth=1)
        axis.axhline(1.0, color="grey", linewidth=0.5)
        axis.set_ylabel("ratio")
        axis.set_title(title, fontsize=10)
        for x, v in zip(positions, values):
            if np.isfinite(v):
                axis.text(x, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    axes[-1].set_xticks(positions)
    axes[-1].set_xticklabels([c.replace("/", "\n") for c in order], fontsize=8)
    axes[-1].set_xlabel("latent / image")
    figure.suptitle("keras-gon fit vs PyTorch, steps/s ratios (batch 64, width 16; dashed: target)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- main --------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed repeat")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up steps (incl. XLA compile)")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--spe-values", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--torch-threads", type=int, help="default: the cores TF uses")
    parser.add_argument("--skip-options", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--skip-cli", action="store_true", help="skip timing `keras-gon train gon --steps 20`"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("FRAMEWORK", "VARIANT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--images", help=argparse.SUPPRESS)
    grid = parser.add_argument_group(
        "grid (issue 30)",
        "--grid measures latent x image x model cells instead of the above, "
        "each cell in fresh subprocesses; --grid-out is resumable (cells measured with every "
        "model asked for are skipped); --grid-report only writes the table and plot",
    )
    grid.add_argument("--grid", action="store_true", help="measure the grid")
    grid.add_argument(
        "--grid-report",
        action="store_true",
        help="write the Markdown table and the plot from --grid-out, no measurement",
    )
    grid.add_argument("--grid-out", type=Path, default=Path(__file__).with_name("speed_grid.json"))
    grid.add_argument("--grid-table", type=Path, default=Path(__file__).with_name("speed_grid.md"))
    grid.add_argument("--grid-plot", type=Path, default=Path(__file__).with_name("speed_grid.png"))
    grid.add_argument(
        "--cells",
        nargs="*",
        metavar="LATENT/HxWxC",
        help="cells to measure, e.g. 256/64x64x3 (default: every latent x image)",
    )
    grid.add_argument("--grid-latents", type=int, nargs="*", default=list(GRID_LATENTS))
    grid.add_argument("--grid-images", nargs="*", default=list(GRID_IMAGES))
    grid.add_argument("--grid-models", nargs="*", default=list(GRID_MODELS), choices=GRID_MODELS)
    grid.add_argument("--grid-repeats", type=int, default=5)
    grid.add_argument("--grid-seconds", type=float, default=2.5, help="seconds per timed repeat")
    grid.add_argument(
        "--grid-warmup", type=int, default=5, help="warm-up steps (incl. XLA compile)"
    )
    grid.add_argument(
        "--grid-calibration", type=int, default=3, help="steps timed to choose the steps per repeat"
    )
    grid.add_argument("--grid-min-steps", type=int, default=3)
    grid.add_argument("--grid-max-steps", type=int, default=200)
    grid.add_argument("--grid-images-count", type=int, default=512, help="images held in memory")
    grid.add_argument("--grid-memory-steps", type=int, default=3)
    grid.add_argument(
        "--keras-jit",
        choices=("auto", "on", "off"),
        default="auto",
        help="keras-gon's XLA: the library's choice (auto) or forced",
    )
    grid.add_argument("--redo", action="store_true", help="measure cells already in --grid-out")
    grid.add_argument(
        "--grid-max-other-cpu",
        type=float,
        default=25.0,
        help="mean CPU (percent of a core) of other processes above which a cell's "
        "timing is measured again (--grid-retries times), then marked noisy",
    )
    grid.add_argument("--grid-retries", type=int, default=1)
    grid.add_argument(
        "--grid-budget",
        type=float,
        default=0.0,
        help="seconds after which no new cell is started (0: no limit)",
    )
    grid.add_argument("--grid-child", help=argparse.SUPPRESS)
    grid.add_argument(
        "--grid-memory-child",
        nargs=3,
        metavar=("FRAMEWORK", "CELL", "MODEL"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)

    if args.grid_child:
        print(
            "GRID "
            + json.dumps(grid_cell_child(args.grid_child, args.images, args.grid_models, args)),
            flush=True,
        )
        return
    if args.grid_memory_child:
        framework, cell, model = args.grid_memory_child
        print(
            "MEMORY "
            + json.dumps(
                grid_memory_child(framework, cell, model, args.images, args.grid_memory_steps)
            ),
            flush=True,
        )
        return
    if args.grid or args.grid_report:
        if args.grid:
            run_grid(args)
        print(grid_report(json.loads(args.grid_out.read_text()), args.grid_table, args.grid_plot))
        return

    if args.memory_child:
        if args.memory_child[0] == "torch":
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        print(
            "MEMORY " + json.dumps(memory_child(*args.memory_child, args.steps, args.images)),
            flush=True,
        )
        return

    import keras
    import tensorflow as tf
    import torch

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    torch.set_num_threads(args.torch_threads or threads)
    results = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": cpu_info(),
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "threads": {"tf_intra_op": threads, "torch": torch.get_num_threads()},
        "load_average_at_start": os.getloadavg(),
        "training": {},
        "keras_options": {},
        "memory_mib": {},
    }
    log(
        json.dumps(
            {k: results[k] for k in ("machine", "versions", "threads", "load_average_at_start")}
        )
    )
    x_train, x_test = load_arrays()

    flops = counted_step_flops()
    flops["decoder_forward_flops_per_sample_analytic"] = decoder_forward_flops()
    flops.update(keras_step_flops(flops["decoder_forward_flops_per_sample_analytic"]))
    results["flops"] = flops
    log(f"[flops] {flops}")

    encode_pair = None
    for name in args.variants:
        pair = compare_training(name, x_train, x_test, args, results)
        if name == "gon-layer" and pair:
            encode_pair = pair
    if encode_pair:
        compare_encode(*encode_pair, x_test, args, results)
        gon = results["training"]["gon-layer"]
        peak = results["machine"]["peak_gflops_fp32"]
        achieved = {
            # FLOPs each actually executes per step
            "keras_fit": flops["keras_step_flops"] * gon["keras_fit_steps_per_s"] / 1e9,
            "torch": flops["step_flops"] * gon["torch_steps_per_s"] / 1e9,
            # the paper's step FLOPs per second of work done (same latents, same update)
            "keras_fit_paper_step_equivalent": flops["step_flops"]
            * gon["keras_fit_steps_per_s"]
            / 1e9,
        }
        results["gflops_per_s"] = {**achieved, "machine_peak": peak}
        log(
            f"[gflop/s] keras fit {achieved['keras_fit']:.1f} executed "
            f"({achieved['keras_fit_paper_step_equivalent']:.1f} paper-step equivalent), torch "
            f"{achieved['torch']:.1f}, peak {peak:.0f} "
            f"({100 * achieved['keras_fit'] / peak:.0f}% / {100 * achieved['torch'] / peak:.0f}%)"
        )
    if not args.skip_cli:
        measure_cli(args, results)
    if not args.skip_options:
        keras_options(x_train, args, results)
    if not args.skip_memory:
        measure_memory(results, args.steps, x_train)
    results["load_average_at_end"] = os.getloadavg()
    log(f"load average at end: {results['load_average_at_end']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()

"""Profile one training step per grid cell in both frameworks: where each spends its time (issue 30).

For each model (gon, ae, vgon on BCE, vgon-dlogistic) and each cell ("LATENT/HxWxC") of
`speed.py --grid`, the keras-gon `train_step` (a `tf.function`, XLA as `compile()` chooses)
is traced with `tf.profiler` and the PyTorch twin's step (`speed.grid_torch_model`: same
architecture, loss and optimizer) with `torch.profiler`, both on one fixed batch of 64 real
images. Each framework's op time per step (summed over its compute threads) is sorted into
the same groups: convolutions, matrix products, normalisation, reductions, copies,
optimizer and the remaining element-wise ops; PyTorch's times are its operators' self
times, so nothing is counted twice. TensorFlow runs one op at a time here
(`TF_NUM_INTEROP_THREADS=1`, each op still on all intra-op threads), so that its op times
add up to its wall time as PyTorch's do. Also the wall time per step of each, without a
profiler. Results are appended to a JSON-lines file as each cell finishes (a rerun skips
the cells already there) and printed as a table:

    python benchmarks/profile_cells.py --cells 32/32x32x1 256/64x64x3 --models gon ae vgon

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One op at a time, as PyTorch's eager step runs them: op times then add up to the wall
# time and compare op for op (TensorFlow's default runs independent ops concurrently, each
# on the same intra-op threads, and a concurrent op's time counts its waiting).
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import speed  # noqa: E402
from profile_step import CONTAINERS, COPY_OPS, op_events  # noqa: E402

GROUPS = (
    "convolutions",
    "matrix products",
    "normalisation",
    "reductions",
    "element-wise",
    "copies and broadcasts",
    "optimizer",
    "other",
)
COPIES = COPY_OPS | {"Pad"}
TORCH_COPIES = frozenset(
    {
        "aten::copy_",
        "aten::contiguous",
        "aten::cat",
        "aten::stack",
        "aten::expand",
        "aten::view",
        "aten::reshape",
        "aten::permute",
        "aten::transpose",
        "aten::t",
        "aten::flatten",
        "aten::zeros",
        "aten::zeros_like",
        "aten::ones_like",
        "aten::fill_",
        "aten::zero_",
        "aten::empty",
        "aten::empty_like",
        "aten::empty_strided",
        "aten::clone",
        "aten::slice",
        "aten::select",
        "aten::as_strided",
        "aten::_reshape_alias",
        "aten::unsqueeze",
        "aten::squeeze",
        "aten::detach",
        "aten::alias",
        "aten::resize_",
        "aten::to",
        "aten::_to_copy",
    }
)
TORCH_REDUCTIONS = frozenset({"aten::sum", "aten::mean", "aten::amax", "aten::amin"})


def tf_group(op_type: str, name: str) -> str:
    """The group of a TensorFlow op event from its type and its (scoped) name.

    A convolution's bias (`BiasAdd` and its gradient `BiasAddGrad`) counts with the
    convolutions, as PyTorch's convolution kernels add it themselves."""
    kind = op_type.replace("_MklNative", "").replace("_Mkl", "").replace("_Fused", "")
    scope = name.lower()
    if "Conv2D" in kind or kind.startswith("DepthwiseConv") or kind.startswith("BiasAdd"):
        return "convolutions"
    if "MatMul" in kind or kind.startswith("Einsum"):
        return "matrix products"
    if "adam" in scope or kind.startswith(("ResourceApply", "AssignAdd", "AssignSub")):
        return "optimizer"
    if "normalization" in scope:
        return "normalisation"
    if kind in ("Sum", "Mean", "Max", "Min", "Prod"):
        return "reductions"
    if kind in COPIES:
        return "copies and broadcasts"
    if "Variable" in kind or kind.startswith(("Assign", "Resource")):
        return "other"
    return "element-wise"


def torch_structural_group(name: str) -> str | None:
    """The group an enclosing PyTorch event gives every op below it, or None: the
    optimizer's step, a convolution, group normalisation or a matrix product, forward
    (`aten::...`) or backward (`autograd::engine::evaluate_function: ...Backward0`)."""
    if name.startswith(("Optimizer.step", "Optimizer.zero_grad")):
        return "optimizer"
    kind = name.lower()
    if "convolution" in kind or "conv_transpose" in kind or "conv2d" in kind:
        return "convolutions"
    if "group_norm" in kind or "groupnorm" in kind or "batch_norm" in kind:
        return "normalisation"
    if kind.endswith(("aten::addmm", "aten::mm", "aten::linear", "aten::bmm", "aten::matmul")):
        return "matrix products"
    if kind.endswith(("addmmbackward0", "mmbackward0")):
        return "matrix products"
    return None


def torch_group(name: str, ancestors: list[str]) -> str:
    """The group of a PyTorch event (its self time): the optimizer's if any enclosing event
    is its step, else that of the innermost structural event enclosing it (itself
    included: `torch_structural_group`), else by its own name. Group normalisation's
    second-order terms run as plain ops outside any group-norm event (PyTorch
    differentiates its backward formula op by op), so they count as element-wise here,
    while TensorFlow's, in the layer's name scope, count as normalisation."""
    if any(a.startswith(("Optimizer.step", "Optimizer.zero_grad")) for a in ancestors):
        return "optimizer"
    for event in [name, *reversed(ancestors)]:
        group = torch_structural_group(event)
        if group is not None:
            return group
    if name in TORCH_REDUCTIONS:
        return "reductions"
    if name in TORCH_COPIES:
        return "copies and broadcasts"
    if name.startswith("aten::"):
        return "element-wise"
    return "other"


def wall_ms(step, repeats: int, steps: int) -> float:
    """Median wall milliseconds per step over `repeats` runs of `steps` calls."""
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        walls.append((time.perf_counter() - start) / steps * 1e3)
    return statistics.median(walls)


def profile_keras(model_name: str, cell: str, batch: np.ndarray, args) -> dict:
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    latent, image = cell.split("/")
    model = speed.grid_keras_model(model_name, int(latent), image)
    model.optimizer.build(model.trainable_variables)
    x = tf.constant(batch)
    function = tf.function(model.train_step, jit_compile=bool(model.jit_compile))

    def step():
        function(x)

    for _ in range(args.warmup):
        step()
    wall = wall_ms(step, args.repeats, args.steps)
    with tempfile.TemporaryDirectory() as logdir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
        tf.profiler.experimental.start(logdir, options=options)
        profiled = wall_ms(step, 1, args.steps)
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
    records = (
        (tf_group(op_type, name), op_type, picoseconds / 1e9)
        for name, op_type, picoseconds in op_events(space)
        if not op_type.startswith(CONTAINERS)
    )
    return {
        **summary(records, wall, profiled, args),
        "xla": bool(model.jit_compile),
        "origin": speed.origin_path(model),
    }


def profile_torch(model_name: str, cell: str, batch: np.ndarray, args) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    latent, image = cell.split("/")
    gon = speed.grid_torch_model(model_name, int(latent), image)
    x = torch.as_tensor(batch).permute(0, 3, 1, 2).contiguous()

    def step():
        gon.step(x)

    for _ in range(args.warmup):
        step()
    wall = wall_ms(step, args.repeats, args.steps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        profiled = wall_ms(step, 1, args.steps)
    return summary(
        (
            (torch_group(event.name, ancestors(event)), event.name, event.self_cpu_time_total / 1e3)
            for event in prof.events()
        ),
        wall,
        profiled,
        args,
    )


def ancestors(event) -> list[str]:
    """The names of the PyTorch profiler events enclosing `event`, outermost first."""
    names, parent = [], event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    return names[::-1]


def summary(records, wall: float, profiled: float, args) -> dict:
    """A framework's row: its wall time per step (without and with the profiler) and, from
    `(group, op name, milliseconds)` records of `args.steps` profiled steps, the op time
    and op count per step of each group and of the `args.top` costliest op names."""
    groups, events, kinds = collections.Counter(), collections.Counter(), collections.Counter()
    for group, name, milliseconds in records:
        groups[group] += milliseconds / args.steps
        events[group] += 1 / args.steps
        kinds[f"{group}: {name}"] += milliseconds / args.steps
    return {
        "wall_ms": wall,
        "profiled_wall_ms": profiled,
        "op_ms": dict(groups),
        "events": dict(events),
        "top_ops": dict(kinds.most_common(args.top)),
    }


def table(rows: list[dict]) -> str:
    """Markdown: per model and cell, wall ms per step and op ms per step by group,
    keras-gon / PyTorch, and the speed ratio (PyTorch's wall time / keras-gon's)."""
    head = "| model | cell | origin | wall ms | speed vs PyTorch | " + " | ".join(GROUPS) + " |"
    lines = [head, "|---|---|---|---:|---:|" + "---:|" * len(GROUPS)]
    for row in rows:
        k, t = row["keras"], row["torch"]
        cells = [
            f"{k['op_ms'].get(g, 0):.1f} / {t['op_ms'].get(g, 0):.1f}"
            if k["op_ms"].get(g, 0) + t["op_ms"].get(g, 0) >= 0.05
            else "-"
            for g in GROUPS
        ]
        lines.append(
            f"| {row['model']} | {row['cell']} | {k.get('origin') or '-'} | "
            f"{k['wall_ms']:.1f} / {t['wall_ms']:.1f} | {t['wall_ms'] / k['wall_ms']:.2f}x | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["32/32x32x1"])
    parser.add_argument("--models", nargs="+", default=["gon", "ae", "vgon"])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed or profiled run")
    parser.add_argument("--repeats", type=int, default=3, help="wall-time runs (median)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch threads")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("profile_cells.jsonl"))
    parser.add_argument("--top", type=int, default=15, help="op types kept per framework")
    parser.add_argument("--frameworks", nargs="+", default=["keras", "torch"])
    args = parser.parse_args(argv)

    done = []
    if args.out.exists():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    for cell in args.cells:
        batch = speed.grid_images(cell.split("/")[1], speed.BATCH)[: speed.BATCH]
        for model_name in args.models:
            if any(
                r["cell"] == cell
                and r["model"] == model_name
                and all(framework in r for framework in args.frameworks)
                for r in done
            ):
                continue
            row = {"cell": cell, "model": model_name}
            if "keras" in args.frameworks:
                row["keras"] = profile_keras(model_name, cell, batch, args)
            if "torch" in args.frameworks:
                row["torch"] = profile_torch(model_name, cell, batch, args)
            row["load"] = speed.load_level()
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            done.append(row)
            print(json.dumps(row), flush=True)
    rows = [r for r in done if "keras" in r and "torch" in r]
    print(table(rows))


if __name__ == "__main__":
    main()

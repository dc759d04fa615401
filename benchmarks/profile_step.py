"""Profile a training step (the default GON's by default): where its time goes, op type by op type (issue 7).

Traces `steps` calls of the model's `train_step` (in a `tf.function`, XLA as
`--jit`) with `tf.profiler` and sums the host trace's op events by op type:
milliseconds per step (summed over the compute threads, so it can exceed the
wall time) and events per step. TensorFlow traces only the ops its executor
marks expensive; cheap ops run inline and are not listed. Also prints the wall
time per step without the profiler and the traced graph's op counts.

    python benchmarks/profile_step.py            # latent 32, width 16, batch 64, as speed.py
    python benchmarks/profile_step.py --model vgon --image 64x64x3 --latent 256

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="profiled steps")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the step")
    parser.add_argument("--normalization", default="layer")
    parser.add_argument("--top", type=int, default=20, help="op types to list")
    parser.add_argument(
        "--model",
        default="gon",
        choices=("gon", "vgon", "vgon-dlogistic", "ae"),
        help="vgon: the variational GON on BCE; ae: the ConvAutoencoder",
    )
    parser.add_argument("--image", default="32x32x1", help="HxWxC (random images unless 32x32x1)")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--names", type=int, default=0, help="list the slowest op names")
    parser.add_argument("--wall-steps", type=int, default=100, help="steps per wall-time repeat")
    parser.add_argument("--share-origin", default="auto", help="auto, forward, reverse or batched")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import keras_gon
    from keras_gon.data import load_dataset

    keras.utils.set_random_seed(0)
    shape = tuple(int(v) for v in args.image.split("x"))
    common = dict(
        image_shape=shape, latent_dim=args.latent, width=16, normalization=args.normalization
    )
    if args.model == "gon":
        share = {"auto": "auto", "forward": True, "reverse": "reverse", "batched": False}
        model = keras_gon.GON(share_origin=share[args.share_origin], **common)
        print(f"origin: {model.origin_method(True, batch_size=64)}")
    elif args.model == "ae":
        model = keras_gon.ConvAutoencoder(**common)
    else:
        likelihood = "bce" if args.model == "vgon" else "discretized_logistic"
        model = keras_gon.VariationalGON(likelihood=likelihood, **common)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8), jit_compile=args.jit)
    model.optimizer.build(model.trainable_variables)
    if args.image == "32x32x1":
        train, _, _ = load_dataset(DATA, image_size=32, batch_size=64, seed=0)
        batch = next(iter(train))
    else:
        batch = tf.random.stateless_uniform((64, *shape), seed=(0, 0))
    step = tf.function(model.train_step, jit_compile=args.jit)
    for _ in range(args.warmup):
        step(batch)
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.wall_steps):
            step(batch)
        walls.append((time.perf_counter() - start) / args.wall_steps * 1e3)
    graph = step.get_concrete_function(batch).graph
    counts = collections.Counter(op.type for op in graph.get_operations())
    print(
        f"wall time per step without the profiler: median {statistics.median(walls):.2f} ms "
        f"({', '.join(f'{w:.2f}' for w in walls)})"
    )
    print(f"traced graph: {sum(counts.values())} ops; most frequent: {counts.most_common(8)}")

    with tempfile.TemporaryDirectory() as logdir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
        tf.profiler.experimental.start(logdir, options=options)
        for _ in range(args.steps):
            step(batch)
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
    total, events, scopes = collections.Counter(), collections.Counter(), collections.Counter()
    names_total = collections.Counter()
    for name, op_type, picoseconds in op_events(space):
        total[op_type] += picoseconds
        events[op_type] += 1
        if not op_type.startswith(CONTAINERS):
            scopes[op_scope(name)] += picoseconds
            if args.names:
                names_total[name] += picoseconds
    print(f"\n{'op type':34s} {'ms/step':>8s} {'events/step':>12s}")
    for op_type, picoseconds in total.most_common(args.top):
        print(
            f"{op_type:34s} {picoseconds / 1e9 / args.steps:8.3f} {events[op_type] / args.steps:12.1f}"
        )
    groups = collections.Counter()
    for op_type, picoseconds in total.items():
        if op_type.startswith(CONTAINERS):
            continue  # the function and executor events that contain the ops
        groups[op_group(op_type)] += picoseconds
    op_total = sum(groups.values())
    print(f"\n{'op group':34s} {'ms/step':>8s} {'share':>8s}")
    for group, picoseconds in groups.most_common():
        print(f"{group:34s} {picoseconds / 1e9 / args.steps:8.3f} {picoseconds / op_total:8.1%}")
    print(f"\n{'layer or part (from op names)':34s} {'ms/step':>8s} {'share':>8s}")
    for scope, picoseconds in scopes.most_common():
        print(f"{scope:34s} {picoseconds / 1e9 / args.steps:8.3f} {picoseconds / op_total:8.1%}")
    for name, picoseconds in names_total.most_common(args.names):
        print(f"{picoseconds / 1e9 / args.steps:8.3f}  {name}")


CONTAINERS = (" __inference", "Run", "Process", "__")
"""Op types of the host trace's function and executor events, which contain the ops."""

COPY_OPS = frozenset(
    {
        "Tile",
        "BroadcastTo",
        "Transpose",
        "ConcatV2",
        "Pack",
        "Slice",
        "StridedSlice",
        "Identity",
        "Reshape",
        "Fill",
        "ZerosLike",
        "OnesLike",
    }
)
"""Op types that copy or broadcast tensors."""


def op_events(space):
    """`(name, op_type, duration_ps)` of every op event of a `tf.profiler` XSpace (op
    events are named "name:OpType"; the function and executor events among them too)."""
    for plane in space.planes:
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name:
                    yield name, name.split(":")[-1], event.duration_ps


SCOPES = (
    "normalization",
    "activation",
    "output_activation",
    "conv_transpose",
    "conv_",
    "posterior",
    "reparameterization",
    "adam",
    "loss",
)


def op_scope(name: str) -> str:
    """The layer (or part of the step) an op event belongs to, from its name: the first of
    `SCOPES` its name scope contains, with "gradient" when the op is in a gradient
    (first or second order); else "other"."""
    scope = name.rsplit(":", 1)[0].lower()
    part = next((s for s in SCOPES if s in scope), "other")
    return f"{part} (gradient)" if "gradient" in scope else part


def op_group(op_type: str) -> str:
    """A coarse class of an op type: convolutions, matrix products, or the rest."""
    name = op_type.replace("_MklNative", "").replace("_Mkl", "").replace("_Fused", "")
    if name.startswith(("Conv2D", "DepthwiseConv")):
        return "convolutions"
    if name.startswith(("MatMul", "BatchMatMul", "Einsum")):
        return "matrix products"
    if name in ("Sum", "Mean", "Max", "Min", "Prod", "BiasAddGrad"):
        return "reductions"
    if name in COPY_OPS:
        return "copies and broadcasts"
    if "Variable" in name or name.startswith(("Assign", "Resource")):
        return "variable reads and updates"
    return "elementwise"


if __name__ == "__main__":
    main()

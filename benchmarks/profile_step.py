"""Profile the default GON's training step: where its time goes, op type by op type (issue 7).

Traces `steps` calls of the model's `train_step` (in a `tf.function`, XLA as
`--jit`) with `tf.profiler` and sums the host trace's op events by op type:
milliseconds per step (summed over the compute threads, so it can exceed the
wall time) and events per step. TensorFlow traces only the ops its executor
marks expensive; cheap ops run inline and are not listed. Also prints the wall
time per step without the profiler and the traced graph's op counts.

    python benchmarks/profile_step.py            # latent 32, width 16, batch 64, as speed.py

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
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import keras_gon
    from keras_gon.data import load_dataset

    keras.utils.set_random_seed(0)
    model = keras_gon.GON(
        image_shape=(32, 32, 1), latent_dim=32, width=16, normalization=args.normalization
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8), jit_compile=args.jit)
    model.optimizer.build(model.trainable_variables)
    train, _, _ = load_dataset(DATA, image_size=32, batch_size=64, seed=0)
    batch = next(iter(train))
    step = tf.function(model.train_step, jit_compile=args.jit)
    for _ in range(30):
        step(batch)
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(100):
            step(batch)
        walls.append((time.perf_counter() - start) / 100 * 1e3)
    graph = step.get_concrete_function(batch).graph
    counts = collections.Counter(op.type for op in graph.get_operations())
    print(f"wall time per step without the profiler: median {statistics.median(walls):.2f} ms "
          f"({', '.join(f'{w:.2f}' for w in walls)})")
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
    total, events = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name:  # op events are "name:OpType"
                    continue
                op_type = name.split(":")[-1]
                total[op_type] += event.duration_ps
                events[op_type] += 1
    print(f"\n{'op type':34s} {'ms/step':>8s} {'events/step':>12s}")
    for op_type, picoseconds in total.most_common(args.top):
        print(f"{op_type:34s} {picoseconds / 1e9 / args.steps:8.3f} {events[op_type] / args.steps:12.1f}")


if __name__ == "__main__":
    main()

"""Issue 6: the size of each model kind's SavedModel and the reloaded encoder's throughput.

For every model kind at the sizes the notes report (latent 32, width 16; the
implicit GON with 4 sine layers of 32 units; GLO with a latent per mnist10k
training image), exports with `keras_gon.export_saved_model`, measures the
folder's size on disk, reloads it with `tf.saved_model.load` and times its
`encode` signature on held-out mnist10k images at batch 256 (median over
repeats, after a warm-up call). Sizes and speed do not depend on training, so
the models are exported as initialised.

    python benchmarks/export_sizes.py [--repeats 5] [--out benchmarks/export_sizes.json]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"
BATCH = 256


def model_kinds():
    import keras_gon

    return {
        "gon": lambda: keras_gon.GON(latent_dim=32, width=16),
        "vgon": lambda: keras_gon.VariationalGON(latent_dim=32, width=16),
        "vae": lambda: keras_gon.VAE(latent_dim=32, width=16),
        "igon": lambda: keras_gon.ImplicitGON(
            image_shape=(28, 28, 1), latent_dim=32, hidden_units=32, num_layers=4
        ),
        "ae": lambda: keras_gon.ConvAutoencoder(latent_dim=32, width=16),
        "tied_ae": lambda: keras_gon.TiedAutoencoder(latent_dim=32, width=16),
        "glo": lambda: keras_gon.GLO(latent_dim=32, width=16, num_examples=8000),
        "classifier": lambda: keras_gon.GONClassifier(latent_dim=32, width=16),
    }


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from keras_gon.data import load_dataset
    from keras_gon.export import export_saved_model

    images = {}
    for size in (32, 28):
        _, test, _ = load_dataset(DATA, image_size=size, batch_size=BATCH, shuffle_train=False)
        images[size] = [tf.constant(b) for b in test.as_numpy_iterator() if len(b) == BATCH]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, build in model_kinds().items():
            keras.utils.set_random_seed(0)
            model = build()
            parameters = int(sum(v.numpy().size for v in model.weights))
            path = export_saved_model(model, Path(tmp) / kind / "1")
            encode = tf.saved_model.load(str(path)).signatures["encode"]
            batches = images[model.image_shape[0]]
            encode(images=batches[0])  # warm-up
            rates = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for batch in batches:
                    encode(images=batch)["latents"].numpy()
                rates.append(len(batches) * BATCH / (time.perf_counter() - start))
            results[kind] = {
                "bytes": folder_bytes(path),
                "weights": parameters,
                "encode_images_per_s": statistics.median(rates),
                "encode_repeats": rates,
            }
            print(
                f"{kind:10s} {folder_bytes(path) / 2**10:8.0f} KiB  {parameters:8,d} weights  "
                f"encode {statistics.median(rates):8.0f} images/s (batch {BATCH})",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

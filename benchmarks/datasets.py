"""Issue 25: the GON and the AE beside it on the paper's other data, as a user trains them.

Each cell is `keras-gon train KIND --data SOURCE --steps STEPS ...` in a fresh process
(the command a user runs), on real data from ../shared/data:

- Fashion-MNIST: the official IDX folder (60,000 / 10,000), 32x32 grey;
- CIFAR-10: the JPEG folder (train/ and test/ class folders), 32x32 colour;
- CelebA: the flat folder of 8,000 faces at 64x64 (10 % held out, seed 0);
- COIL-20: the folder of 1,440 grey PNGs at 128x128 (10 % held out, seed 0).

It records what the run's metrics.json says (steps/s after the first 5 steps, held-out
SSE per image on the whole held-out split, parameters), the process's peak resident
memory (the child's ru_maxrss) and the run's reconstructions.png, and writes
`benchmarks/DATASETS.md` with a table and one picture per cell
(`benchmarks/datasets/<cell>.png`). Results are kept in `datasets_results.json` as each
cell finishes: run again to continue.

    python benchmarks/datasets.py --cifar10 DIR --celeba DIR --coil20 DIR

The tars in ../shared/data must be extracted first (CIFAR-10's `train/` and `test/` into
one folder). Time it on a quiet machine: `--pause PATTERN` stops (SIGSTOP) the processes
whose command line matches while it runs, and continues them after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
STEPS, BATCH, WIDTH = 300, 64, 16

CELLS = [
    # (dataset, title, image size, latent, extra arguments)
    ("fashion_mnist", "Fashion-MNIST 32x32 (IDX folder)", 32, 32, []),
    ("cifar10", "CIFAR-10 32x32 colour (JPEG folder)", 32, 256, []),
    ("celeba", "CelebA 64x64 colour (JPEG folder)", 64, 128, []),
    ("coil20", "COIL-20 128x128 grey (PNG folder)", 128, 64, []),
]
KINDS = ("gon", "ae")


def _pause(pattern: str | None, sig) -> None:
    if pattern:
        subprocess.run(["pkill", f"-{sig.name[3:]}", "-f", pattern], check=False)


def run_cell(kind: str, source: str, size: int, latent: int, out: Path) -> dict:
    """One `keras-gon train` in a fresh process: its metrics and peak memory."""
    command = [
        sys.executable,
        "-m",
        "keras_gon",
        "train",
        kind,
        "--data",
        source,
        "--image-size",
        str(size),
        "--latent-dim",
        str(latent),
        "--width",
        str(WIDTH),
        "--batch-size",
        str(BATCH),
        "--steps",
        str(STEPS),
        "--lr",
        "1e-3",
        "--verbose",
        "0",
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if child.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{stderr.read()[-3000:]}")
    peak = usage.ru_maxrss  # KiB on Linux
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "kind": kind,
        "steps": metrics["steps"],
        "steps_per_second": metrics["steps_per_second"],
        "held_out_sse": metrics["test_loss"],
        "train_loss": metrics["train_loss"],
        "parameters": metrics["parameters"],
        "image_shape": metrics["image_shape"],
        "num_train": metrics["num_train"],
        "num_test": metrics["num_test"],
        "split": metrics["split"],
        "peak_rss_mib": round(peak / 1024, 1),
        "wall_seconds": round(wall, 1),
        "collapsed": metrics.get("collapsed", False),
    }


def write_report(results: dict, sources: dict) -> None:
    lines = [
        "# The GON and the AE on the paper's other data (issue 25)",
        "",
        f"`python benchmarks/datasets.py` ({STEPS} steps of `keras-gon train KIND --data "
        f"FOLDER`, batch {BATCH}, width {WIDTH}, Adam 1e-3, seed 0; the latent size per "
        "dataset as in the table; each cell a fresh process, the other work on the machine "
        "paused). Steps/s after the first 5 steps (tracing, XLA compilation); held-out SSE per "
        "image on the whole held-out split after the budget; peak resident memory of the "
        "process (data pipeline, model, compilation). 2 CPU cores, no GPU.",
        "",
        "| data | size | latent | model | steps/s | held-out SSE | parameters | peak memory "
        "(MiB) | wall (s) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for dataset, title, size, latent, _ in CELLS:
        for kind in KINDS:
            cell = results.get(f"{dataset}-{kind}")
            if cell is None:
                continue
            lines.append(
                f"| {title} | {size}x{size}x{cell['image_shape'][-1]} | {latent} | "
                f"{kind.upper()} | {cell['steps_per_second']:.1f} | {cell['held_out_sse']:.2f} | "
                f"{cell['parameters']:,} | {cell['peak_rss_mib']:.0f} | {cell['wall_seconds']:.0f} |"
            )
    lines += [
        "",
        "Splits: "
        + "; ".join(
            f"{title}: {results[f'{dataset}-gon']['num_train']:,} training / "
            f"{results[f'{dataset}-gon']['num_test']:,} held out ({results[f'{dataset}-gon']['split']})"
            for dataset, title, *_ in CELLS
            if f"{dataset}-gon" in results
        )
        + ".",
        "",
    ]
    for dataset, title, *_ in CELLS:
        for kind in KINDS:
            if f"{dataset}-{kind}" in results:
                lines += [
                    f"**{title}, {kind.upper()}** (held-out images above their reconstructions):",
                    "",
                    f"![{dataset} {kind}](datasets/{dataset}-{kind}.png)",
                    "",
                ]
    (HERE / "DATASETS.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fashion-mnist", default=str(SHARED / "fashion-mnist"))
    parser.add_argument("--cifar10", required=True, help="extracted cifar10-jpg.tar")
    parser.add_argument("--celeba", required=True, help="extracted celeba-8k.tar's celeba/")
    parser.add_argument("--coil20", required=True, help="extracted coil-20-proc.tar's folder")
    parser.add_argument("--pause", help="SIGSTOP the processes matching this while running")
    parser.add_argument("--results", type=Path, default=HERE / "datasets_results.json")
    args = parser.parse_args()
    sources = {
        "fashion_mnist": args.fashion_mnist,
        "cifar10": args.cifar10,
        "celeba": args.celeba,
        "coil20": args.coil20,
    }
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    (HERE / "datasets").mkdir(exist_ok=True)
    _pause(args.pause, signal.SIGSTOP)
    try:
        for dataset, _title, size, latent, _ in CELLS:
            for kind in KINDS:
                key = f"{dataset}-{kind}"
                if key in results:
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "run"
                    results[key] = run_cell(kind, sources[dataset], size, latent, out)
                    shutil.copy(out / "reconstructions.png", HERE / "datasets" / f"{key}.png")
                args.results.write_text(json.dumps(results, indent=1) + "\n")
                print(key, results[key], flush=True)
    finally:
        _pause(args.pause, signal.SIGCONT)
    write_report(results, sources)


if __name__ == "__main__":
    main()

"""Two more seeds of CIFAR-10's multi-step cells (issue 27).

The study's plan trains the 10-step GON and the detached 10-step GON with seed 0 only; that
10-step run rose at its third epoch (57.1 -> 107.2 held-out SSE). This script trains the same
specs (read from the study's stored seed-0 runs) with seeds 1 and 2, stored apart from the
plan in `--out`, resumable like the study, and prints the per-epoch held-out SSE.

    python benchmarks/cifar10_multistep_seeds.py --runs STUDY/cifar10/runs --out FOLDER
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

from keras_gon.experiments.study import RunSpec, StudyData, run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="the study's cifar10/runs")
    parser.add_argument("--out", type=Path, required=True, help="where the new runs go")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    specs, stored = [], None
    for kind in ("gon_10step", "gon_10step_detach"):
        stored = json.loads(
            Path(glob.glob(str(args.runs / f"{kind}-ours-z32-s0-*.json"))[0]).read_text()
        )
        spec = {k: v for k, v in stored["spec"].items() if k in RunSpec.__dataclass_fields__}
        spec["options"] = tuple(tuple(option) for option in spec.get("options", ()))
        specs += [RunSpec(**{**spec, "seed": seed}) for seed in args.seeds]
    data = StudyData(
        **{k: v for k, v in stored["data"].items() if k in StudyData.__dataclass_fields__}
    )
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_study(specs, data, args.out)
    for spec in specs:
        if spec.key in results:
            epochs = [round(e["held_out_loss"], 2) for e in results[spec.key]["epochs"]]
            print(spec.kind, "seed", spec.seed, "held-out SSE by epoch", epochs)


if __name__ == "__main__":
    main()

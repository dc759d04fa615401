"""keras_gon.experiments.study and .reproduce: resumable studies, verdicts and the report."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_gon.errors import InputError
from keras_gon.experiments import reproduce as reproduction
from keras_gon.experiments.study import (
    SETTINGS,
    RunSpec,
    StudyData,
    build_model,
    load_result,
    run_study,
)

from helpers import NPZ

TINY = reproduction.BUDGETS["tiny"]


def test_run_keys_are_stable_and_name_what_changes_the_result():
    spec = RunSpec("gon", "paper", 32, 30, 0)
    assert spec.key.startswith("gon-paper-z32-s0-")
    assert RunSpec("gon", "paper", 32, 30, 0, label="x", group="y").key == spec.key
    assert RunSpec("gon", "paper", 32, 30, 1).key != spec.key
    assert RunSpec("gon", "ours", 32, 30, 0).key != spec.key
    assert spec.identity()["setting_values"] == SETTINGS["paper"]
    with pytest.raises(InputError, match="unknown model kind"):
        RunSpec("resnet", "paper", 32, 1, 0)
    with pytest.raises(InputError, match="unknown setting"):
        RunSpec("gon", "authors", 32, 1, 0)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_settings_build_the_paper_and_the_library_models(setting):
    gon = build_model(RunSpec("gon", setting, 4, 1, 0, width=2), (16, 16, 1), 10)
    vgon = build_model(RunSpec("vgon", setting, 4, 1, 0, width=2), (16, 16, 1), 10)
    config = gon.get_config()
    assert config["decoder"]["config"]["normalization"] == SETTINGS[setting]["normalization"]
    assert config["inner_batch_reduction"] == SETTINGS[setting]["inner_batch_reduction"]
    assert config["inner_loss"] == SETTINGS[setting]["gon_inner_loss"]
    assert vgon.step_size == SETTINGS[setting]["vgon_step_size"]
    assert vgon.likelihood == "discretized_logistic"
    detach = build_model(RunSpec("gon_10step_detach", setting, 4, 1, 0, width=2), (16, 16, 1), 10)
    assert detach.detach and detach.num_steps == 10 and detach.step_size == 0.1
    glo = build_model(RunSpec("glo", setting, 4, 1, 0, width=2), (16, 16, 1), 10)
    assert glo.num_examples == 10


def test_the_full_study_plans_the_decisive_runs_first():
    specs = reproduction.reproduction_specs(reproduction.BUDGETS["full"])
    decisive = [s for s in specs if s.group == "decisive"]
    assert len(decisive) == 48 and {s.epochs for s in decisive} == {30}
    assert {s.latent_dim for s in decisive} == {32, 256} and {s.seed for s in decisive} == {0, 1, 2}
    assert {s.kind for s in decisive} == {"gon", "ae", "vgon", "vae"}
    assert [s.group for s in specs[:32]] == ["decisive"] * 32  # two seeds before any ablation
    assert {s.seed for s in specs[:32]} == {0, 1}
    linear = [s for s in specs if dict(s.options).get("encoder") == "linear"]
    assert {(s.kind, s.setting, s.latent_dim) for s in linear} == {
        ("ae", "paper", 32),
        ("ae", "ours", 32),
        ("vae", "ours", 32),
        ("ae", "paper", 256),
        ("ae", "ours", 256),
        ("vae", "ours", 256),
    }
    assert {s.epochs for s in linear} == {30} and {s.group for s in linear} == {"diagnostics"}
    with pytest.raises(InputError, match="unknown study groups"):
        reproduction.reproduction_specs(TINY, ["everything"])


SCRIPT = """
import sys
from pathlib import Path
from keras_gon.experiments.study import RunSpec, StudyData, run_study
specs = [RunSpec(kind, "ours", 4, 1, 0, width=2) for kind in ("gon", "ae", "tied_ae")]
run_study(specs, StudyData(sys.argv[1], eval_images=32, steps_per_epoch=2), Path(sys.argv[2]),
          log=lambda line: print(line, flush=True))
"""


def _study(out: Path):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, NPZ, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_DETERMINISTIC_OPS": "1"},
    )


def _results(out: Path) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))}


def _figures(results: dict) -> dict:
    return {
        name: (r["test"], [e["held_out_loss"] for e in r["epochs"]]) for name, r in results.items()
    }


def test_a_study_killed_mid_run_continues_and_ends_with_the_uninterrupted_results(tmp_path):
    whole = tmp_path / "whole"
    process = _study(whole)
    process.communicate(timeout=600)
    assert process.returncode == 0 and len(_results(whole)) == 3

    killed = tmp_path / "killed"
    process = _study(killed)
    deadline = time.monotonic() + 600
    while not (killed / "runs").is_dir() or not list((killed / "runs").glob("*.json")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)  # well into the second run
    os.killpg(process.pid, signal.SIGKILL)  # the study and the run under way
    process.wait()
    first = {p.name: p.read_bytes() for p in (killed / "runs").glob("*.json")}
    assert 1 <= len(first) < 3, sorted(first)
    assert not [p for p in (killed / "runs").iterdir() if p.name.startswith(".")]  # nothing half

    process = _study(killed)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0
    assert f"{len(first)} of 3 runs already stored" in output
    assert output.count("] ") == 3 - len(first)  # only the missing runs were trained
    for name, data in first.items():  # finished runs untouched
        assert (killed / "runs" / name).read_bytes() == data
    assert _figures(_results(killed)) == _figures(_results(whole))


def test_reproduce_tiny_writes_a_report_with_every_claim(tmp_path):
    out = tmp_path / "study"
    report = tmp_path / "REPRODUCTION.md"
    report.write_text(
        f"old\n{reproduction.ANALYSIS_START}\nkept analysis\n{reproduction.ANALYSIS_END}\n"
    )
    reproduction.reproduce(
        NPZ, out, budget="tiny", report=report, groups=["table1"], log=lambda line: None
    )
    text = report.read_text()
    assert "## Verdicts" in text and "kept analysis" in text
    assert "A plumbing check" in text.split("## Verdicts")[0]  # tiny verdicts are not findings
    verdicts = text.split("## Verdicts")[1].split("## Decisive runs")[0]
    for claim in ("AE < tied AE", "1-step GON << 1-step detach", "GON < GLO"):
        assert claim in verdicts, claim
    for claim in ("VGON < VAE", "10-step ≈ 1-step", "ELU best, ReLU worst", "σ = 0 best"):
        assert claim not in verdicts, claim  # the claims of groups not run are not listed
    assert "| missing |" in text  # only table1 was run: the decisive cells are missing
    table1 = [s for s in reproduction.reproduction_specs(TINY, ["table1"])]
    stored = _results(out)
    assert len(stored) == len(table1)
    # what a run cost: its process's CPU seconds (pauses and shared cores aside), in the report
    for name, run in stored.items():
        assert 0 < run["cpu_seconds"] < 4 * run["seconds"] + 1, name
    assert "the CPU seconds of the run's process: median" in text
    again = reproduction.reproduce(
        NPZ, out, budget="tiny", report=report, groups=["table1"], report_only=True
    )
    assert len(again) == len(table1)
    # the linear-encoder diagnostics sit beside the decisive runs, not in the diagnostics table
    reproduction.reproduce(
        NPZ, out, budget="tiny", report=report, groups=["table1", "diagnostics"], report_only=True
    )
    text = report.read_text()
    decisive = text.split("## Decisive runs")[1].split("## Per-epoch")[0]
    assert (
        "| AE, linear encoder | paper |" in decisive
        and "| VAE, linear encoder | ours |" in decisive
    )
    assert "linear encoder" not in text.split("## Diagnostics")[1].split("<!-- analysis")[0]
    reproduction.reproduce(
        NPZ, out, budget="tiny", report=report, groups=["decisive"], report_only=True
    )
    text = report.read_text()
    for claim in ("GON < AE", "VGON < VAE", "GON overfits less than AE"):
        assert claim in text, claim
    assert "% of train)" in text  # the generalisation gap also relative to the training loss


def test_reproduce_takes_the_dataset_an_image_folder_and_its_sweeps(tmp_path, cifar10_folder):
    """`--dataset cifar10` on real CIFAR-10 JPEGs: its own image size and groups; the fig.
    10a sweep of spatial latents (GON and AE at 1x1 and 4x4 maps) as a table and a plot."""
    out = tmp_path / "cifar10"
    report = tmp_path / "REPRODUCTION_cifar10.md"
    results = reproduction.reproduce(
        str(cifar10_folder),
        out,
        budget="tiny",
        report=report,
        groups=["spatial"],
        dataset="cifar10",
        log=lambda line: None,
    )
    assert len(results) == 4
    options = sorted(r["spec"]["options"] for r in results.values())
    assert options == [[], [], [["latent_map_size", 4]], [["latent_map_size", 4]]]
    study = json.loads((out / "study.json").read_text())
    assert study["dataset"] == "cifar10" and study["data"]["image_size"] == 32
    text = report.read_text()
    assert text.startswith("# Reproducing the paper's claims on CIFAR-10")
    assert "Fig. 10a: GON < AE by latent map side" in text and "**Fig. 10a**" in text
    assert (tmp_path / "REPRODUCTION_cifar10_fig10.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="unknown dataset 'svhn'"):
        reproduction.reproduce(str(cifar10_folder), out, dataset="svhn")


def test_two_copies_of_a_study_share_its_runs_through_claims(tmp_path):
    """A run claimed by a live process is skipped; a dead process's claim is taken over."""
    from keras_gon.experiments.study import claim_path

    live, stale = (RunSpec(kind, "ours", 4, 1, 0, width=2) for kind in ("gon", "ae"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim_path(tmp_path, live).parent.mkdir(parents=True)
    claim_path(tmp_path, live).write_text(f"{os.getpid()} {socket.gethostname()}")
    claim_path(tmp_path, stale).write_text(f"{dead.pid} {socket.gethostname()}")
    lines = []
    results = run_study(
        [live, stale],
        StudyData(NPZ, eval_images=32, steps_per_epoch=2),
        tmp_path,
        log=lines.append,
        isolate=False,
    )
    assert list(results) == [stale.key]  # trained by this copy
    assert load_result(tmp_path, live) is None  # left to the process holding it
    assert any(live.key in line and "another process" in line for line in lines), lines
    assert claim_path(tmp_path, live).exists() and not claim_path(tmp_path, stale).exists()

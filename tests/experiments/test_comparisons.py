"""keras_gon.experiments: tables of held-out SSE and loss curves on a tiny budget of real data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_gon import experiments
from keras_gon.data import DataInfo

from helpers import NPZ

TINY = experiments.Budget(
    data=NPZ,
    steps=3,
    batch_size=32,
    latent_dim=8,
    width=4,
    jit_compile=False,
    glo_inference_steps=2,
)


def test_table1_variants_share_the_decoder():
    variants = experiments.table1_variants(TINY)
    labels = [v.label for v in variants]
    assert labels == ["GON", "AE", "tied AE", "1-step detach", "GLO", "10-step", "10-step detach"]
    info = DataInfo("digits", (32, 32, 1), 100, 10)
    models = {v.label: v.recipe(TINY, 0).build(info) for v in variants}
    shapes = {label: [w.shape for w in m.decoder.weights] for label, m in models.items()}
    assert all(s == shapes["GON"] for s in shapes.values())
    assert models["10-step"].num_steps == 10 and models["10-step"].step_size == 0.1
    assert models["10-step detach"].detach and models["1-step detach"].detach


def test_run_experiment_writes_table_plot_and_json(tmp_path):
    variants = [v for v in experiments.table1_variants(TINY) if v.label in ("GON", "GLO")]
    payload = experiments.run_experiment("table1", variants, TINY, [0, 1], tmp_path, "tiny")
    table = (tmp_path / "table1.md").read_text()
    assert "| GON |" in table and "| GLO |" in table and "±" in table
    assert (tmp_path / "table1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "table1.json").read_text())
    assert len(saved["runs"]) == 4 and not (tmp_path / "table1.partial.json").exists()
    gon = [r for r in payload["runs"] if r["label"] == "GON"]
    values = [r["held_out_sse"] for r in gon]
    row = payload["rows"][0]
    assert row["mean"] == pytest.approx(np.mean(values))
    assert row["std"] == pytest.approx(np.std(values, ddof=1))
    assert row["parameters"] == 4757  # the GON decoder at latent 8, width 4
    assert payload["rows"][1]["parameters"] == 4757 + 8 * 8000  # GLO: plus a latent per image
    assert all(len(r["train_losses"]) == 3 for r in payload["runs"])


def test_summarize_and_markdown():
    runs = [
        {"label": "a", "held_out_sse": v, "train_sse": v - 0.5, "parameters": 5} for v in (1.0, 3.0)
    ]
    rows = experiments.summarize(runs, ["a"])
    assert rows == [
        {
            "label": "a",
            "mean": 2.0,
            "std": pytest.approx(np.sqrt(2)),
            "train_mean": 1.5,
            "seeds": 2,
            "parameters": 5,
        }
    ]
    assert "| a | 2.00 ± 1.41 | 1.50 | 5 |" in experiments.markdown_table(rows, "t", TINY)

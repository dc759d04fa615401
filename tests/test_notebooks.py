"""Every notebook in notebooks/ runs top to bottom (small budget, real data) and is stored without outputs."""

from __future__ import annotations

import json
import os
import time

import pytest

from helpers import MNIST10K, REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = [path.name for path in NOTEBOOKS]
    assert "01_gon_quickstart.ipynb" in names and "04_serving.ipynb" in names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name}: strip outputs before committing (e.g. nbstripout)"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("KERAS_GON_SMALL_BUDGET", "1")
    monkeypatch.setenv("KERAS_GON_DATA", str(MNIST10K))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # The kernel runs in a temporary folder: it must import this checkout's keras_gon.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on any error
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.0f} s")
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} drew no figure"


def _setup_cfg_url():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    return parser["metadata"]["url"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_cell_installs_the_checkout_or_the_projects_url(path):
    first = "".join(json.loads(path.read_text())["cells"][1]["source"])
    assert f'PROJECT_URL = "{_setup_cfg_url()}"' in first  # the url in one place, setup.cfg's
    assert "setup.cfg" in first and "pip" in first


def test_every_notebook_has_a_colab_badge_in_both_readmes():
    url = _setup_cfg_url().replace("https://github.com/", "")
    for readme in (REPO_ROOT / "README.md", REPO_ROOT / "notebooks" / "README.md"):
        text = readme.read_text()
        for path in NOTEBOOKS:
            assert f"colab.research.google.com/github/{url}/blob/main/notebooks/{path.name}" in text

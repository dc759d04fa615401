"""README.md as written: every command and Python snippet in it runs.

Commands are the lines of ```bash / ```sh / ```console blocks (a trailing `\\` continues
a line, `#` starts a comment, a `$ ` prompt is dropped); Python snippets are ```python
blocks. Both run in a temporary folder, in the order of the README, with these stated
offline substitutions (`SUBSTITUTIONS`, `COMMAND_BUDGET`):

- data from the network (`keras:NAME`, a TFDS name) is `../shared/data/mnist10k.npz`, and
  `keras.datasets.mnist.load_data()` returns a small slice of it;
- `../shared/data/` is the shared data folder, `/tmp/` the temporary folder;
- training budgets are a couple of steps (`--steps 2`, `epochs=1`) on a tiny model;
- the image folders of "Train on your own images" (`~/pictures/faces`, `~/pictures/pets`)
  are 320 real CelebA faces and two classes of real CIFAR-10 JPEGs (`FOLDERS`);
- `experiment` commands train dozens of models: they are parsed and their data found
  (tests/test_cli_experiments.py runs each experiment at a tiny budget);
- commands that are not `keras-gon` (pip, pytest) are listed, not run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from helpers import MNIST10K, SHARED_DATA

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND_LANGUAGES = ("bash", "sh", "console", "shell")
SUBSTITUTIONS = (  # (pattern, replacement) on every command and snippet, in this order
    (r"--data keras:\w+", f"--data {MNIST10K}"),
    (r"--data (mnist|fashion_mnist|cifar10)\b( --data-dir \S+)?", f"--data {MNIST10K}"),
    (r"\.\./shared/data/", f"{SHARED_DATA}/"),
    (r"\bepochs=\d+", "epochs=1"),
)
COMMAND_BUDGET = ("--steps", "2", "--verbose", "0")
"""What a `train` command gets instead of its epochs or steps."""
TINY_MODEL = ("--width", "2", "--latent-dim", "4")
"""What a new model gets (a preset fixes its own options)."""


def blocks(text: str) -> list[tuple[str, str]]:
    """`(language, body)` of every fenced block of a Markdown text."""
    return [
        (m.group(1).strip().lower(), m.group(2))
        for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    ]


def commands(body: str) -> list[str]:
    """The command lines of a shell block: continued lines joined, prompts and comments
    dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"^\s*\$ ", "", line)
        words = shlex.split(line, comments=True)
        if words:
            lines.append(shlex.join(words))
    return lines


FOLDERS = ("~/pictures/faces", "~/pictures/pets")
"""The README's example image folders, given real ones by the test."""


def substitute(text: str, tmp_path: Path, folders: dict | None = None) -> str:
    """`text` with the offline substitutions, the example folders (`folders`) and /tmp/ in
    the test's folder."""
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"(?<![\w.])/tmp/", f"{tmp_path}/", text)
    for name, path in (folders or {}).items():
        text = text.replace(name, str(path))
    return text


def with_budget(words: list[str]) -> list[str]:
    """A `train` command at the test's budget: no epochs, two steps, a tiny new model."""
    if words[:1] != ["train"]:
        return words
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("--epochs", "--steps", "--verbose"):
            skip = True
            continue
        kept.append(word)
    return kept + list(COMMAND_BUDGET) + ([] if "--from-preset" in kept else list(TINY_MODEL))


def readme_steps(tmp_path: Path, folders: dict | None = None) -> list[tuple[str, object]]:
    """("command", argv) and ("python", source) in README order, after substitution;
    ("skip", line) for commands that are not keras-gon's."""
    steps, seen = [], set()
    for language, body in blocks(README.read_text()):
        if language == "python":
            steps.append(("python", substitute(body, tmp_path, folders)))
        elif language in COMMAND_LANGUAGES:
            for line in commands(body):
                words = shlex.split(substitute(line, tmp_path, folders))
                if words[0] != "keras-gon":
                    steps.append(("skip", line))
                    continue
                argv = with_budget(words[1:])
                if tuple(argv) not in seen:  # e.g. three data sources made one by substitution
                    seen.add(tuple(argv))
                    steps.append(("command", argv))
    return steps


def test_the_readme_has_commands_and_snippets_to_run(tmp_path):
    kinds = [kind for kind, _ in readme_steps(tmp_path)]
    assert kinds.count("command") >= 10 and kinds.count("python") >= 1, kinds


@pytest.fixture()
def offline_mnist(monkeypatch):
    """`keras.datasets.mnist.load_data()` from mnist10k: 256 training and 64 test images."""
    import keras

    with np.load(MNIST10K) as data:
        split = (
            (data["x_train"][:256], data["y_train"][:256]),
            (data["x_test"][:64], data["y_test"][:64]),
        )
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda *args, **kwargs: split)


@pytest.fixture()
def example_folders(tmp_path, celeba_folder, cifar10_folder) -> dict:
    """The README's `~/pictures/faces` and `~/pictures/pets` as real image folders."""
    import shutil

    pets = tmp_path / "pets"
    for split in ("train", "test"):
        for name in ("airplane", "automobile"):  # two classes, as cats and dogs
            shutil.copytree(cifar10_folder / split / name, pets / split / name)
    return {"~/pictures/faces": celeba_folder, "~/pictures/pets": pets}


def test_every_readme_command_and_snippet_runs_as_written(
    tmp_path, monkeypatch, capsys, offline_mnist, example_folders
):
    from keras_gon import cli

    monkeypatch.chdir(tmp_path)
    ran = []
    for kind, step in readme_steps(tmp_path, example_folders):
        if kind == "python":
            namespace: dict = {}
            exec(compile(step, "README.md", "exec"), namespace)  # noqa: S102 (the README's)
            if "x_served" in namespace:  # the reloaded Keras export equals model.predict
                model, x_test = namespace["model"], namespace["x_test"]
                np.testing.assert_allclose(
                    np.asarray(namespace["x_served"]),
                    model.predict(x_test[:16], verbose=0),
                    rtol=1e-5,
                    atol=1e-5,
                )
            ran.append("python")
            continue
        if kind == "skip" or step[0] == "experiment":
            if kind != "skip":  # parsed, its data found
                args = cli.build_parser().parse_args(step)
                for data in args.data or []:
                    assert ":" in data or Path(data).exists(), data
            continue
        if step[:1] == ["--help"] or "--help" in step:
            with pytest.raises(SystemExit) as done:
                cli.main(step)
            assert done.value.code == 0
            continue
        status = cli.main(step)
        err = capsys.readouterr().err
        assert status == 0, (step, err)
        ran.append(step[0])
    assert {"train", "evaluate", "sample", "render", "interpolate", "export", "python"} <= set(
        ran
    ), ran
    assert (tmp_path / "samples.png").is_file()
    assert (tmp_path / "igon_mnist-render.png").is_file()
    assert (tmp_path / "igon_mnist-interpolation.png").is_file()
    assert (tmp_path / "saved_models" / "gon-mnist" / "1" / "saved_model.pb").is_file()

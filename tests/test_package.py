"""Tests of `keras_gon/__init__.py`: a light import that still registers the models."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_gon

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
LOAD = """
import sys
import numpy as np
{imports}
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[2], model.reconstruct(np.load(sys.argv[3])))
print(type(model).__module__, "tensorflow" in sys.modules)
print("hooks left:", sum(type(f).__name__ == "_RegisterWithKeras" for f in sys.meta_path))
"""
WITHOUT_HOOK = (
    "import keras_gon\n"  # the import hook taken out: registering by hand or by first use
    "sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_RegisterWithKeras']\n"
)


@pytest.mark.parametrize(
    "imports",
    [
        "import keras\nimport keras_gon",  # Keras first: registered at once
        "import keras_gon\nimport keras",  # Keras second: registered as Keras is imported
        "import keras_gon\nfrom keras import saving\nimport keras",  # (a submodule first)
        "import keras_gon\nimport tensorflow\nimport keras",  # (TF looks for Keras first)
        "import keras_gon\nimport keras_gon.data\nimport keras",  # (Keras under keras-gon's)
        WITHOUT_HOOK + "import keras\nkeras_gon.register_with_keras()",
        WITHOUT_HOOK + "import keras\nkeras_gon.GON",  # the first use of a model
    ],
)
def test_a_plain_import_lets_keras_load_a_saved_model(imports, tmp_path, mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=8, width=4)
    x = mnist32[0][:4]
    model.reconstruct(x)
    model.save(tmp_path / "gon.keras")
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD.format(imports=imports),
            str(tmp_path / "gon.keras"),
            str(tmp_path / "out.npy"),
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["keras_gon.models.gon", "True", "hooks", "left:", "0"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.reconstruct(x), atol=1e-6)


def test_any_module_imports_first_in_a_fresh_process():
    """A layer module imported first (before Keras) loads: the import hook does not
    register the models while a keras-gon module is being imported (an earlier hook
    re-entered the half-imported layers package)."""
    for module in (
        "keras_gon.layers.conv_decoder",
        "keras_gon.training",
        "keras_gon.models",
        "keras_gon.experiments.reproduce",
        "keras_gon.preset_builder",
    ):
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=ENV
        )
        assert result.returncode == 0, (module, result.stderr[-1500:])


def test_importing_keras_gon_alone_does_not_import_tensorflow():
    code = "import sys, keras_gon; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    )
    assert result.stdout.split() == ["False", "False"]

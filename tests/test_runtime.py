"""keras_gon.runtime: run-wide seed, determinism and dtype policy, restored afterwards."""

from __future__ import annotations

import keras
import pytest
from tensorflow.python.framework import config as tf_config

from keras_gon.errors import InputError
from keras_gon.runtime import PRECISIONS, run_settings


def test_run_settings_apply_and_restore_policy_and_determinism():
    assert keras.config.dtype_policy().name == "float32"
    assert not tf_config.is_op_determinism_enabled()
    with run_settings(seed=3, deterministic=True, precision="mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert tf_config.is_op_determinism_enabled()
    assert keras.config.dtype_policy().name == "float32"
    assert not tf_config.is_op_determinism_enabled()
    with pytest.raises(RuntimeError):  # restored even when the block fails
        with run_settings(seed=0, deterministic=True, precision="mixed_float16"):
            raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"
    assert not tf_config.is_op_determinism_enabled()


def test_run_settings_refuse_bad_options():
    assert PRECISIONS == ("float32", "mixed_float16", "mixed_bfloat16")
    with pytest.raises(InputError, match="unknown precision 'float8'"):
        with run_settings(precision="float8"):
            pass
    with pytest.raises(InputError, match="deterministic training needs a seed"):
        with run_settings(deterministic=True):
            pass

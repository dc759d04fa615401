"""keras_gon.backup: atomic epoch backups that survive a kill during a write, and resuming from them."""

from __future__ import annotations

import json

import h5py
import keras
import numpy as np
import pytest

import keras_gon
from keras_gon.backup import AtomicBackupAndRestore
from keras_gon.errors import InputError

BATCH = 64
IMAGES = 256  # 4 steps per epoch


class Killed(Exception):
    """Stands for SIGKILL arriving in the middle of a checkpoint write."""


def _model():
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(image_shape=(32, 32, 1), latent_dim=8, width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    return model


def _kill_during_weights_write(model):
    """Makes the model's next `save_weights` write half a file, then die."""

    def half_written(filepath, overwrite=True, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then nothing
        raise Killed

    model.save_weights = half_written


def _load_error(model, path) -> Exception | None:
    """None when `path`'s weights load into `model`, else the error it raised (the caller
    asserts which: a missing file must not pass for a corrupt one)."""
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(str(path))
    except Exception as error:  # noqa: BLE001 (returned, and checked by the caller)
        return error
    return None


def _stock(directory):
    return keras.callbacks.BackupAndRestore(str(directory), delete_checkpoint=False)


@pytest.fixture(scope="module")
def images(mnist32, make_batches):
    return make_batches(mnist32[0][:IMAGES], BATCH, shuffle=True)


def test_kill_during_a_write_keeps_the_last_checkpoint_and_resume_restores_it(tmp_path, images):
    backup_dir = tmp_path / "backup"
    model = _model()
    backup = AtomicBackupAndRestore(backup_dir, fingerprint={"run": "a"})
    model.fit(images, epochs=2, callbacks=[backup], verbose=0)
    state = json.loads((backup_dir / "state.json").read_text())
    assert (state["epoch"], state["steps"], state["weights"]) == (2, 8, "epoch-0002.weights.h5")
    assert sorted(p.name for p in backup_dir.iterdir()) == ["epoch-0002.weights.h5", "state.json"]
    weights_after_two = [np.array(w) for w in model.get_weights()]

    # Epoch 3 ends; the process dies while writing its weights.
    _kill_during_weights_write(model)
    with pytest.raises(Killed):
        model.fit(
            images,
            epochs=3,
            callbacks=[AtomicBackupAndRestore(backup_dir, {"run": "a"})],
            verbose=0,
        )
    assert json.loads((backup_dir / "state.json").read_text())["epoch"] == 2
    assert _load_error(_model(), backup_dir / "epoch-0002.weights.h5") is None

    # Keras's own BackupAndRestore writes in place: the same kill corrupts its only checkpoint.
    del model.save_weights
    model._initial_epoch = None  # set by the restore above; Keras never resets it
    keras_dir = tmp_path / "keras-backup"
    model.fit(images, epochs=1, callbacks=[_stock(keras_dir)], verbose=0)
    assert _load_error(_model(), keras_dir / "latest.weights.h5") is None
    _kill_during_weights_write(model)
    with pytest.raises(Killed):
        model.fit(images, epochs=2, callbacks=[_stock(keras_dir)], verbose=0)
    corrupt = keras_dir / "latest.weights.h5"
    assert corrupt.stat().st_size == 108  # the half-written file, in place of the checkpoint
    error = _load_error(_model(), corrupt)
    assert isinstance(error, OSError), repr(error)  # h5py cannot open it

    # A new process restores epoch 2: weights, Adam's state and step count; fit starts at epoch 3.
    resumed = _model()
    backup = AtomicBackupAndRestore(backup_dir, fingerprint={"run": "a"})
    backup.set_model(resumed)
    backup.on_train_begin()
    assert (backup.initial_epoch, backup.restored_steps, backup.steps) == (2, 8, 8)
    assert resumed._initial_epoch == 2  # what keras.Model.fit starts from
    assert int(resumed.optimizer.iterations) == 8
    for a, b in zip(weights_after_two, resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    backup.delete()
    assert not backup_dir.exists()


@pytest.fixture(scope="module")
def model():
    return _model()


def _backed_up_epoch(backup, epoch, loss):
    backup.on_epoch_begin(epoch)
    backup.on_train_batch_end(3)
    backup.on_epoch_end(epoch, {"loss": loss})


def test_backup_of_another_run_is_refused(tmp_path, model):
    backup = AtomicBackupAndRestore(tmp_path, fingerprint={"lr": 1e-3, "config": (1, 2)})
    backup.set_model(model)
    _backed_up_epoch(backup, 0, 3.0)
    same = AtomicBackupAndRestore(tmp_path, fingerprint={"lr": 1e-3, "config": [1, 2]})
    same.check_fingerprint(same.read_state())
    other = AtomicBackupAndRestore(tmp_path, fingerprint={"lr": 1e-4, "config": [1, 2]})
    with pytest.raises(InputError, match="another run: its lr is 0.001, this run's is 0.0001"):
        other.check_fingerprint(other.read_state())
    # a config: the options that differ, not the two configs whole
    first = AtomicBackupAndRestore(tmp_path / "c", fingerprint={"config": {"a": 1, "prior": "x"}})
    first.set_model(model)
    _backed_up_epoch(first, 0, 3.0)
    second = AtomicBackupAndRestore(tmp_path / "c", fingerprint={"config": {"a": 1, "prior": "y"}})
    with pytest.raises(
        InputError, match=r"its config differs \(prior 'x' there, 'y' here\); resume"
    ):
        second.check_fingerprint(second.read_state())

    # nested configs (the decoder's): the dotted path of what differs
    def decoder(width):
        return {"config": {"prior": "x", "decoder": {"config": {"width": width, "kernel": 4}}}}

    saved = AtomicBackupAndRestore(tmp_path / "d", fingerprint=decoder(32))
    saved.set_model(model)
    _backed_up_epoch(saved, 0, 3.0)
    wider = AtomicBackupAndRestore(tmp_path / "d", fingerprint=decoder(16))
    with pytest.raises(
        InputError, match=r"differs \(decoder.config.width 32 there, 16 here\); resume"
    ):
        wider.check_fingerprint(wider.read_state())
    (tmp_path / "state.json").write_text("{trunc")
    with pytest.raises(InputError, match="cannot read the backup"):
        other.read_state()


def test_an_epoch_with_a_non_finite_loss_is_not_backed_up(tmp_path, model):
    backup = AtomicBackupAndRestore(tmp_path / "backup")
    backup.set_model(model)
    _backed_up_epoch(backup, 0, float("nan"))
    assert not backup.exists() and backup.steps == 4
    _backed_up_epoch(backup, 1, 3.0)
    assert backup.read_state()["epoch"] == 2 and backup.read_state()["steps"] == 8
    with h5py.File(tmp_path / "backup" / "epoch-0002.weights.h5") as weights:
        assert "optimizer" in weights  # the optimizer's state is backed up with the weights

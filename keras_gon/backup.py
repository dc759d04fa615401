"""Resumable training: `keras.callbacks.BackupAndRestore` with atomic checkpoints.

Keras's `BackupAndRestore` writes `latest.weights.h5` in place with
h5py and then `training_metadata.json` in place: a kill during the first
write leaves a truncated weights file, and a kill between the two leaves
weights of epoch k+1 with the epoch number k. `AtomicBackupAndRestore`
keeps Keras's restore mechanism (the model's initial epoch) but writes

    <backup_dir>/epoch-<k>.weights.h5   (a temporary file, fsynced, renamed)
    <backup_dir>/state.json             (the same, renamed last)

`state.json` names the weights file of the last finished epoch, so at every
instant it points to complete weights of the epoch it states; older weights
files are deleted only after it has moved on. A run killed at any moment
resumes from the last finished epoch and loses at most the current one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import keras

from keras_gon.errors import InputError

STATE_FILE = "state.json"


def _fsync(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _normalise(value):
    """JSON round trip: tuples become lists, so saved and fresh values compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up the training state at the end of every epoch, atomically, and restores it.

    The state is the model's and the optimizer's variables, the number of
    finished epochs and training steps, and the last epoch's logs. At the
    start of `fit`, a backup in `backup_dir` is restored and training
    continues from the next epoch. The backup is kept when `fit` ends (call
    `delete()` once the run's results are safely written); an epoch whose
    logs hold a non-finite value is not backed up.

    Args:
        backup_dir: folder of the backup, used by this run only.
        fingerprint: JSON-able description of the run (model config, data,
            batch size, ...); restoring a backup written with another
            fingerprint raises `InputError` naming the first difference.
    """

    def __init__(self, backup_dir, fingerprint: dict | None = None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        # === Config ===
        self.backup_path = Path(backup_dir)
        self.fingerprint = _normalise(fingerprint or {})

        # === State ===
        self.initial_epoch = 0
        self.restored_steps = 0
        self.restored_logs: dict = {}
        self.steps = 0
        self._batches_this_epoch = 0

    @property
    def state_path(self) -> Path:
        return self.backup_path / STATE_FILE

    def exists(self) -> bool:
        """Whether a backup to restore is in `backup_dir`."""
        return self.state_path.is_file()

    def read_state(self) -> dict:
        """The backup's state: epoch, steps, weights file, fingerprint, logs."""
        try:
            state = json.loads(self.state_path.read_text())
            int(state["epoch"]), int(state["steps"]), str(state["weights"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"cannot read the backup {self.state_path}: {error}") from None
        return state

    def check_fingerprint(self, state: dict) -> None:
        saved = state.get("fingerprint", {})
        for key in sorted(set(saved) | set(self.fingerprint)):
            ours, theirs = self.fingerprint.get(key), saved.get(key)
            if theirs == ours:
                continue
            if isinstance(ours, dict) and isinstance(theirs, dict):  # (a config: what differs)
                what = "; ".join(
                    f"{path} {a!r} there, {b!r} here" for path, a, b in _differences(theirs, ours)
                )
                raise InputError(
                    f"the backup in {self.backup_path} is of another run: its {key} differs "
                    f"({what}); resume with the options the run was started with"
                )
            raise InputError(
                f"the backup in {self.backup_path} is of another run: its {key} is "
                f"{theirs!r}, this run's is {ours!r}; resume with the options the run was "
                "started with"
            )

    # --- Keras hooks ------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self.initial_epoch, self.restored_steps, self.restored_logs = 0, 0, {}
        self._load_model()
        self.steps = self.restored_steps

    def _load_model(self):
        """Restores the weights and the epoch of the last backup (if any)."""
        for stale in self.backup_path.glob(".tmp-*"):  # left by a kill during a write
            stale.unlink(missing_ok=True)
        if not self.exists():
            return
        state = self.read_state()
        self.check_fingerprint(state)
        weights = self.backup_path / state["weights"]
        if not weights.is_file():
            raise InputError(f"the backup {self.state_path} names a missing file {weights.name}")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(weights))
        self.initial_epoch = int(state["epoch"])
        self.restored_steps = int(state["steps"])
        self.restored_logs = dict(state.get("logs", {}))
        self.model._initial_epoch = self.initial_epoch  # how Keras's own callback resumes

    def on_epoch_begin(self, epoch, logs=None):
        self._batches_this_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches_this_epoch = batch + 1  # batch index; exact with steps_per_execution > 1

    def on_epoch_end(self, epoch, logs=None):
        self.steps += self._batches_this_epoch
        self._batches_this_epoch = 0
        self._current_epoch = epoch + 1
        logs = {key: float(value) for key, value in (logs or {}).items()}
        if not all(math.isfinite(value) for value in logs.values()):
            return  # never back up a diverged state
        self._save_model(logs)

    def _save_model(self, logs=None):
        """Writes the weights, then the state naming them, each by an atomic rename."""
        self.backup_path.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{self._current_epoch:04d}.weights.h5"
        handle, temporary = tempfile.mkstemp(
            dir=self.backup_path, prefix=".tmp-", suffix=".weights.h5"
        )
        os.close(handle)
        try:
            self.model.save_weights(temporary, overwrite=True)
            _fsync(temporary)
            os.replace(temporary, self.backup_path / name)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        state = {
            "epoch": self._current_epoch,
            "steps": self.steps,
            "weights": name,
            "fingerprint": self.fingerprint,
            "logs": logs or {},
        }
        handle, temporary = tempfile.mkstemp(dir=self.backup_path, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(json.dumps(state, indent=2, sort_keys=True) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.state_path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        for old in self.backup_path.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        """Keeps the backup: the caller deletes it once the results are written."""

    def delete(self) -> None:
        """Removes the backup folder (after the run's results are written)."""
        shutil.rmtree(self.backup_path, ignore_errors=True)


def _differences(theirs: dict, ours: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, theirs, ours) of every leaf where two nested dicts differ."""
    found = []
    for key in sorted(set(theirs) | set(ours), key=str):
        a, b = theirs.get(key), ours.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append((f"{prefix}{key}", a, b))
    return found

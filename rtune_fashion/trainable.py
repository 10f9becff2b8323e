"""The Ray Tune trainable: one trial = one config trained epoch by epoch, reported and checkpointed.

Contract of :func:`train_trial`:

* the dataset arrives through Ray's object store (``tune.with_parameters``), never read from disk;
* every epoch reports loss, accuracy, val_loss, val_accuracy, best_val_accuracy (running max), epoch,
  epoch_time_s, reported_at (``time.time()`` at the report; Tune's own timestamp has whole seconds) and
  node_id (the Ray node that trained it), with a checkpoint (the ``.keras`` file:
  weights and optimizer state; the epoch and the running best) attached;
* a trial that has a checkpoint (paused by BOHB, retried after a failure, resumed experiment)
  continues after the checkpoint's epoch instead of starting again;
* a NaN or infinite loss ends the trial with :class:`NonFiniteLossError` (nothing reported for that
  epoch, so it can never become the best);
* the seed comes from the experiment seed and the config (:func:`trial_seed`); CPU threads and the
  GPU memory policy follow the trial's resources (:mod:`rtune_fashion.devices`); Keras' session is
  cleared first, since actors are reused between trials;
* under JAX, every epoch also reports the XLA compilations it needed (:data:`compilations.REPORTED`), and
  the trials of one machine compile one architecture's training step one at a time, so that the others
  read it from the compilation cache (:class:`compilations.FirstStepLock`).
"""

from __future__ import annotations

import json
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import keras
import ray
from ray import tune

from rtune_fashion import compilations, devices
from rtune_fashion import config as cfg
from rtune_fashion.data import Dataset
from rtune_fashion.models import build_model
from rtune_fashion.training import fit_epochs

MODEL_FILE = "model.keras"
STATE_FILE = "state.json"


def trial_seed(seed: int, config: dict[str, Any]) -> int:
    """The seed of a trial: a function of the experiment seed and the config, so a rerun of the experiment
    (or the final retraining of the best config) trains with the same initial weights and batch order."""
    text = json.dumps(cfg.validate(config), sort_keys=True)  # the canonical form: equal configs, equal seeds
    return (seed * 1_000_003 + zlib.crc32(text.encode())) % (2**31 - 1)


def trial_resources() -> tuple[float, float]:
    """(CPUs, GPUs) that Tune gave the running trial."""
    bundle = tune.get_context().get_trial_resources().required_resources
    return float(bundle.get("CPU", 1)), float(bundle.get("GPU", 0))


def _save_checkpoint(directory: Path, model: keras.Model, state: dict[str, float]) -> None:
    model.save(directory / MODEL_FILE)
    (directory / STATE_FILE).write_text(json.dumps(state))


def load_checkpoint(checkpoint: tune.Checkpoint) -> tuple[keras.Model, dict[str, float]]:
    """The model and state (epoch, running best) saved by a trial's report."""
    with checkpoint.as_directory() as directory:
        model = keras.models.load_model(Path(directory) / MODEL_FILE)
        state = json.loads((Path(directory) / STATE_FILE).read_text())
    return model, state


def train_trial(config: dict[str, Any], *, data: Dataset, max_epochs: int, seed: int = 0) -> None:
    """Train ``config`` for up to ``max_epochs`` epochs, reporting each one to Tune (see module doc)."""
    config = cfg.validate(config)
    cpus, gpus = trial_resources()
    devices.configure(cpus, gpus)
    keras.backend.clear_session()

    checkpoint = tune.get_checkpoint()
    base_seed = trial_seed(seed, config)
    if checkpoint is not None:
        model, state = load_checkpoint(checkpoint)
        keras.utils.set_random_seed(base_seed + int(state["epoch"]))
    else:
        keras.utils.set_random_seed(base_seed)
        model, state = build_model(config, data.input_shape, data.num_classes), {"epoch": 0}

    node_id = ray.get_runtime_context().get_node_id()  # which machine ran it (trials move after failures)
    compile_counter, callbacks = compilations.counter(), []
    if compile_counter is not None:
        key = compilations.program_key(cfg.architecture(config), data.input_shape, data.num_classes)
        callbacks.append(compilations.FirstStepLock(devices.jax_cache_dir() / "locks", key))
        counted = compile_counter.snapshot()

    def report(epoch: int, metrics: dict[str, float], model: keras.Model) -> None:
        nonlocal counted
        if compile_counter is not None:  # this epoch's compilations (the first epoch's are the trial's cost)
            now = compile_counter.snapshot()
            metrics = {**metrics, **now.minus(counted).as_metrics()}
            counted = now
        # The running best, so that TensorBoard's HParams table (written from a trial's last result)
        # shows each trial's best val accuracy, not its last.
        best = max(metrics["val_accuracy"], state.get("best_val_accuracy", metrics["val_accuracy"]))
        state.update(epoch=epoch, best_val_accuracy=best)
        with tempfile.TemporaryDirectory() as directory:
            _save_checkpoint(Path(directory), model, state)
            tune.report({**metrics, "best_val_accuracy": best, "node_id": node_id, "reported_at": time.time()},
                        checkpoint=tune.Checkpoint.from_directory(directory))  # fmt: skip

    try:
        fit_epochs(model, config, data, start_epoch=int(state["epoch"]), end_epoch=max_epochs, on_epoch=report,
                   callbacks=callbacks)  # fmt: skip
    finally:
        for callback in callbacks:
            callback.release()  # a trial that failed in its first step must not hold the next one back

"""XLA compilations under JAX: counted per epoch, reported per search, and one per architecture and machine
(trials that differ only in dropout, L2 or learning rate share one compiled training step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rtune_fashion import config as cfg
from rtune_fashion.compilations import REPORTED, FirstStepLock
from rtune_fashion.results import load_experiment
from tests.helpers import HANG_TIMEOUT_S, ROOT

TRIALS = 6
# A search of TRIALS trials over at most two architectures (one or two hidden layers); everything else that
# varies is a runtime value. Two trials run at once where Ray has two CPUs: the lock is what keeps the second
# from compiling the same step alongside the first.
SEARCH = f"""
import json, sys
from ray import tune
from rtune_fashion.experiment import ExperimentSettings, run_experiment
from rtune_fashion.spaces import SearchSpace, register_space

register_space(SearchSpace(name="compile_probe", source="tests", params={{
    "model": "mlp", "num_layers": tune.choice([1, 2]), "units": 16, "batch_size": 32,
    "dropout": tune.uniform(0.1, 0.5), "l2": tune.loguniform(1e-5, 1e-3),
    "learning_rate": tune.loguniform(1e-4, 1e-2)}}))
from tests.test_runtime_values import same_weights_both_ways

print(json.dumps(same_weights_both_ways()))  # under JAX, where the values are traced: the same training
run_experiment(ExperimentSettings(space="compile_probe", searcher="random", num_samples={TRIALS}, max_epochs=2,
                                  train_size=320, val_size=200, test_size=100, seed=3, storage=sys.argv[1],
                                  name="probe"))
"""


@pytest.mark.slow
def test_a_search_compiles_each_architecture_s_training_step_once(tmp_path: Path, capsys) -> None:
    """Under JAX, in one process: the weights after an epoch with runtime values equal Keras' own layers' bit for
    bit (tests/test_runtime_values.py compares them under TensorFlow), then the search, its final model and its
    report, as users run them with KERAS_BACKEND=jax."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "RTUNE_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SEARCH, str(tmp_path / "runs")], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[0]) == {"mlp": True, "cnn": True}
    summary = json.loads((tmp_path / "runs" / "probe" / "summary.json").read_text())
    assert summary["versions"]["backend"] == "jax" and summary["final_model"]["test_accuracy"] > 0
    assert "Failed to fetch metrics" not in done.stderr
    record = load_experiment(tmp_path / "runs" / "probe")
    assert len(record.trials) == TRIALS and record.counts()["ERROR"] == 0
    architectures = {json.dumps(cfg.architecture(t.config), sort_keys=True) for t in record.trials}
    first_epochs = [t.history[0] for t in record.trials]
    later_epochs = [row for t in record.trials for row in t.history[1:]]
    assert all(set(REPORTED) <= set(row) for row in first_epochs + later_epochs)
    compiled = sum(row["train_step_compilations"] for row in first_epochs)
    assert compiled == len(architectures)  # an empty cache: each architecture compiles once, never twice
    assert sum(row["train_step_cache_hits"] for row in first_epochs) == TRIALS - len(architectures)
    compiling = [row for row in first_epochs if row["train_step_compilations"]]
    assert all(row["compilations"] > 0 and row["compile_s"] > 0 for row in compiling)
    assert not any(row["train_step_compilations"] + row["train_step_cache_hits"] for row in later_epochs)

    from rtune_fashion.cli import main

    assert main(["report", str(record.directory)]) == 0
    assert (f"Compilations (JAX): the training step compiled {compiled} time(s) and read from the compilation cache "
            f"{TRIALS - compiled} time(s), for {TRIALS} trial(s) of {len(architectures)} architecture(s);"
            ) in capsys.readouterr().out  # fmt: skip


def test_architectures_differ_in_shapes_not_in_runtime_values() -> None:
    base = {"model": "mlp", "num_layers": 2, "units": 64, "dropout": 0.2, "l2": 1e-4, "learning_rate": 1e-3}
    same = [{**base, "dropout": 0.45, "l2": 3e-3, "learning_rate": 0.02, "lr_schedule": "cosine"}]
    other = [{**base, "units_2": 32}, {**base, "dropout_2": 0}, {**base, "l2": 0}, {**base, "batch_size": 64},
             {**base, "optimizer": "sgd"}]  # fmt: skip
    assert all(cfg.architecture(c) == cfg.architecture(base) for c in same)
    assert all(cfg.architecture(c) != cfg.architecture(base) for c in other)
    assert cfg.architecture(base)["dropout_1"] is True and "learning_rate" not in cfg.architecture(base)


def test_the_first_step_lock_holds_a_second_trial_of_the_program_until_the_first_compiled(tmp_path: Path) -> None:
    """Two trials of one program (each its own open file, as two processes have): the second waits in
    on_train_begin until the first's second step begins; one that waits past its guard goes on; release() is
    safe to call again, and a later fit of the same trial does not take the lock again."""
    first, second = FirstStepLock(tmp_path, "k"), FirstStepLock(tmp_path, "k")
    first.on_train_begin()
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: (second.on_train_begin(), entered.set()), daemon=True)
    waiter.start()
    assert not entered.wait(1.0)  # held: the first trial has not run a step yet
    first.on_train_batch_begin(0)
    assert not entered.wait(0.5)  # the first step's call (the compilation) is still going
    first.on_train_batch_begin(1)
    assert entered.wait(HANG_TIMEOUT_S)  # released: the second goes on, to read the cache
    impatient = FirstStepLock(tmp_path, "k", wait_s=0.3)
    impatient.on_train_begin()  # the second holds it now: the guard runs out and it goes on without
    second.release()
    second.release()
    first.on_train_begin()  # a later epoch's fit of a trial that has compiled: nothing to wait for
    assert first._file is None and impatient._file is None
    other = FirstStepLock(tmp_path, "k", wait_s=0.3)
    other.on_train_begin()
    assert other._file is not None  # free again: taken at once
    other.release()

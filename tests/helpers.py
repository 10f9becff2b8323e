"""Helpers for the tests that run experiments as real subprocesses."""

from __future__ import annotations

import importlib.util
import os
import runpy
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def sequential_run_args(script: str, storage: Path, name: str, *, samples: int, epochs: int,
                        train_size: int, eval_size: int = 500) -> list[str]:  # fmt: skip
    """Arguments of a small experiment whose trials run one at a time to the end (FIFO), so that a test
    can interrupt it at a known point."""
    return [str(ROOT / "experiments" / script), "--storage", str(storage), "--name", name,
            "--num-samples", str(samples), "--max-epochs", str(epochs), "--scheduler", "fifo",
            "--max-concurrent", "1", "--train-size", str(train_size), "--val-size", str(eval_size),
            "--test-size", str(eval_size), "--no-retrain", "--time-budget", "none"]  # fmt: skip


def load_script(path: Path) -> ModuleType:
    """A script of scripts/ as a module, so that a test calls its ``main(argv)`` in this process: a new Python
    would import TensorFlow and start a Ray of its own (over 10 s on one slow core), which the script's
    path does not need."""
    from ray import cloudpickle

    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    cloudpickle.register_pickle_by_value(module)  # Ray workers cannot import it: its functions travel by value
    spec.loader.exec_module(module)
    return module


def run_script_in_process(script: str, args: list[str], capsys) -> tuple[int, str, str]:
    """An experiment script as ``python experiments/<script> ARGS`` would run it, but in this process, on the
    tests' shared Ray (a new Python with TensorFlow and a new Ray cost tens of seconds on a slow machine)."""
    path = ROOT / "experiments" / script
    saved = sys.argv
    sys.argv = [str(path), *args]
    try:
        runpy.run_path(str(path), run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = saved
    out = capsys.readouterr()
    return code, out.out, out.err


def reported_epochs(experiment_dir: Path) -> dict[str, list[int]]:
    """For each trial directory, the epochs in its result.json, in the order they were reported."""
    from rtune_fashion.results import read_history

    return {path.parent.name: [row["epoch"] for row in read_history(path.parent)]
            for path in experiment_dir.glob("trial_*/result.json")}  # fmt: skip


def nodes_of_checkpointed_trials(experiment_dir: Path) -> dict[str, list[str]]:
    """The trials for which Tune has registered a checkpoint, as its saved state says (each second while a search
    runs), with the nodes each has run on. A trial's result.json line comes before that: Tune asks the trial for
    the reported checkpoint after logging the result, and a node lost in between costs the trial its epoch."""
    import warnings

    from ray.tune import ExperimentAnalysis

    from rtune_fashion.results import read_history

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials = ExperimentAnalysis(str(experiment_dir)).trials
    except (ValueError, FileNotFoundError):
        return {}  # no state saved yet
    return {trial.trial_id: _nodes(read_history(experiment_dir / Path(trial.path).name))
            for trial in trials if trial.checkpoint is not None}  # fmt: skip


def _nodes(history: list[dict]) -> list[str]:
    return list(dict.fromkeys(row["node_id"] for row in history))


def start_driver(args: list[str], cwd: Path) -> subprocess.Popen:
    """An experiment script as a real driver process in its own process group (as in a terminal)."""
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=ENV, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


# How long a test waits for a subprocess or a sign of progress: far beyond any machine's speed (on one slow
# core beside other tests, a first checkpoint once took over 3 minutes), so only a hang fails, never a slow
# machine. CI's own limit (90 minutes) is above it.
HANG_TIMEOUT_S = 1800.0


def wait_for(condition, what: str, *, driver: subprocess.Popen | None = None, timeout: float = HANG_TIMEOUT_S,
             explain: Callable[[], str] | None = None) -> None:  # fmt: skip
    """Return once ``condition()`` holds. Fails if ``driver`` (a process the condition waits on) ended first,
    with its output, or after ``timeout`` seconds (a hang: see HANG_TIMEOUT_S), with ``explain()`` if given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if driver is not None and driver.poll() is not None:
            out, err = driver.communicate()
            said = (out or "") + (err or "")  # None for a stream that was not piped
            pytest.fail(f"the driver ended (exit {driver.returncode}) before {what}: {said[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {what} in {timeout:.0f} s: a hang, not a slow machine" + (f"; {explain()}" if explain else ""))


def has_checkpoint(experiment_dir: Path) -> bool:
    return any(experiment_dir.glob("trial_*/checkpoint_*/state.json"))


def assert_continued_from_checkpoint(trial: str, epochs: list[int], max_epochs: int) -> None:
    """A trial interrupted by a kill ran every epoch, never restarted from epoch 1, and repeated at most one
    epoch: the one whose result Tune had logged but whose checkpoint it had not yet registered when the
    process died (a window inside Ray that no trainable can close)."""
    assert sorted(set(epochs)) == list(range(1, max_epochs + 1)), (trial, epochs)
    assert epochs.count(1) == 1, (trial, epochs)
    assert len(epochs) - len(set(epochs)) <= 1, (trial, epochs)


def trains_once_all_have_started(config: dict, *, barrier_dir: str, trials: int, **kwargs) -> None:
    """``train_trial`` once ``trials`` trials run at once (each leaves a file in ``barrier_dir``, on this
    machine): a search that cannot run that many side by side waits here until HANG_TIMEOUT_S, then fails."""
    import uuid

    from rtune_fashion.trainable import train_trial

    directory = Path(barrier_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / uuid.uuid4().hex).touch()
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while (started := len(list(directory.iterdir()))) < trials:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {started} of {trials} trials ran at once in {HANG_TIMEOUT_S:.0f} s")
        time.sleep(0.1)
    train_trial(config, **kwargs)


def waits_before_reporting(config: dict, **kwargs) -> None:
    """``train_trial`` after 60 s of waiting: a trial whose first epoch outlasts a short time budget."""
    from rtune_fashion.trainable import train_trial

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.1)
    train_trial(config, **kwargs)


def trains_an_epoch_then_waits_to_be_killed(config: dict, *, max_epochs: int, doomed_node: str | None = None,
                                             **kwargs) -> None:  # fmt: skip
    """``train_trial``, except that a trial without a checkpoint on the node ``doomed_node`` (any node: None) trains
    one epoch (reported and checkpointed), then waits for a test to end its node, failing after HANG_TIMEOUT_S.
    Restored from its checkpoint, it trains the rest. So the loss lands between two checkpoints, on any machine."""
    import ray
    from ray import tune

    from rtune_fashion.trainable import train_trial

    doomed = doomed_node in (None, ray.get_runtime_context().get_node_id())
    if tune.get_checkpoint() is not None or not doomed:
        train_trial(config, max_epochs=max_epochs, **kwargs)
        return
    train_trial(config, max_epochs=1, **kwargs)
    time.sleep(HANG_TIMEOUT_S)
    raise TimeoutError(f"the node of this trial was not ended in {HANG_TIMEOUT_S:.0f} s")

"""Run one experiment: validate, start Ray, search, make the final model, test it once, write results.

Everything an experiment writes lives in ``<storage>/<name>/``:

* Ray Tune's trial folders (results, checkpoints, TensorBoard event files) and its restore state;
* ``settings.json`` (what was asked, so ``rtune resume DIR`` can continue it);
* ``trials.csv`` (one row per trial), ``summary.json`` (best config, val and test accuracy, timings,
  trial counts, errored trials), ``best_model.keras`` (the final model).

``trials.csv`` and ``summary.json`` are written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.search import BasicVariantGenerator

from rtune_fashion import budget, cluster, quiet, resources, storage, tune_state
from rtune_fashion import config as cfg
from rtune_fashion.cpus import usable_cpus
from rtune_fashion.data import Dataset
from rtune_fashion.errors import ExperimentError, ExperimentInterrupted
from rtune_fashion.files import write_atomic
from rtune_fashion.progress import ProgressPrinter, format_elapsed
from rtune_fashion.results import (
    LIVE_STATES,
    OK_STATES,
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    ExperimentRecord,
    TrialRecord,
    grid_repeats,
    load_experiment,
    write_trials_csv,
)
from rtune_fashion.search import METRIC, MODE, SearchPlan, default_scheduler, make_search
from rtune_fashion.sources import FASHION_MNIST, DataSource, parse_image_size
from rtune_fashion.spaces import SearchSpace, check_fits_data, fingerprint, get_space
from rtune_fashion.spaces import validate as validate_search_space
from rtune_fashion.trainable import train_trial, trial_seed

TrialFunction = Callable[..., None]  # (config, *, data, max_epochs, seed) -> None, reports to Tune
BEST_MODEL_FILE = "best_model.keras"
CROSS_VALIDATED_TRAINABLE = "rtune_fashion.crossval.train_cv"  # settings.json's name of the grid's trainable
# Settings a resumed experiment must keep. These define the search:
SEARCH_DEFINING = ("space", "searcher", "scheduler", "num_samples", "max_epochs", "min_epochs", "brackets", "seed",
                   "train_size", "val_size", "test_size", "space_values", "time_budget_s", "flat_space", "data",
                   "color", "image_size", "label")  # fmt: skip
# ... and Ray restores these with it: Tuner.restore reloads the run's TuneConfig and RunConfig (concurrency,
# retries), and restored trials keep their resources while new ones would take new ones (a mix).
RESTORED_BY_RAY = ("cpus_per_trial", "gpus_per_trial", "max_concurrent", "max_failures")
RESUME_FIXED = SEARCH_DEFINING + RESTORED_BY_RAY
# Settings a time budget's plan may have chosen (and the budget, which Tune restores with its state): a
# resume that leaves them unset takes the stored ones.
PLANNED = ("num_samples", "train_size", "val_size", "space_values", "time_budget_s")
FINAL_MODEL_CHOICES = ("auto", "retrain", "checkpoint")
# A budgeted final model averages up to this many trainings: on 12,000 images, 6 epochs, three seeds of one
# CNN scored val 0.8827 / 0.8785 / 0.8838 alone, 0.8911 as two and 0.8923 as three (docs/MEASURED.md).
MAX_ENSEMBLE = 3
# How the best trial is chosen and what its final model trains (summary.json says it too).
SELECTION = ("trials are ranked by their best epoch's val accuracy (the searchers and schedulers see each epoch's "
             "val accuracy as it is reported); a retrained final model trains its config for "
             "that trial's best_epoch epochs from the trial's seed (a trial that was paused or retried was "
             "reseeded with seed + epoch at each resume, so its retraining is not bit-identical to it); a checkpoint "
             "final model is the trial's last epoch")  # fmt: skip
# When the final model is the best trial's checkpoint, this many of the next trials' checkpoints are tried as
# ensemble members (each costs a prediction of the validation split).
CHECKPOINT_CANDIDATES = 4
# A trial's newest checkpoints that Ray keeps. Ray deletes older ones at once, so it saves the whole experiment
# state (every trial's, the searcher's) without waiting for its 1-s period when a trial has made this many
# checkpoints since the last save: a saved state then names the newest checkpoint or the one before (but for a
# short window inside Ray between a deletion and the forced save reaching the disk). At 1 (until issue 15)
# that was a save after every checkpoint of every trial, a cost per epoch that grows with the trials
# (scripts/bench_state_sync.py, docs/MEASURED.md); at 2 it is one only when a trial makes two checkpoints within
# one 1-s period (epochs under a second), and a SIGKILL costs a trial at most one finished epoch more.
CHECKPOINTS_KEPT = 2
SMOKE_SUBSET = {"train": 600, "val": 300, "test": 300}
SMOKE_MAX_EPOCHS = 2
SMOKE_MAX_SAMPLES = 2
# Every Ray worker of an experiment: Keras imported without TensorFlow's C++ start-up lines (see quiet.py),
# no deprecation chatter. A reused actor waits for the previous trial's thread to reach its next report
# (at most one epoch) before taking a new trial; Ray's default of 2 s errors the new trial instead.
WORKER_RUNTIME_ENV = {
    "env_vars": {
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        "TUNE_FUNCTION_THREAD_TIMEOUT_S": "600",
    },
    "worker_process_setup_hook": "rtune_fashion.quiet.setup_worker",
}


@dataclass
class ExperimentSettings:
    """What one experiment searches, with which budget and resources, and where it writes."""

    space: str
    searcher: str
    scheduler: str | None = None
    # None: what a --time-budget affords (rtune_fashion.budget), else 1 pass for the grid searcher, else 10
    num_samples: int | None = None
    max_epochs: int | None = None  # None: 10 (2 with --smoke-test)
    # No trial is stopped early before this many epochs (ASHA's grace period; BOHB's first rung, as close
    # as Ray's brackets allow): a first epoch favours configs that start fast (small batches, no batch
    # norm) over those that end best.
    min_epochs: int | None = None  # None: 1
    # The scheduler's brackets (rtune_fashion.search.make_search): None is ASHA's 1 and all of BOHB's; 1
    # stops every trial from the first rung on, more start some trials' stopping at later rungs.
    brackets: int | None = None
    # None: chosen once Ray runs (rtune_fashion.resources): the cluster's GPUs shared TRIALS_PER_GPU ways with
    # the CPUs to match where it has GPUs, else 1 CPU and no GPU.
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None
    storage: str = "results"
    name: str | None = None
    seed: int = 0
    # The data (rtune_fashion.sources): fashion_mnist, or an image folder, an .npz, a folder of idx files or a
    # .csv (stored as an absolute path); image folders' color and image_size ("HxW"); a CSV's label column.
    data: str = FASHION_MNIST
    color: str | None = None
    image_size: str | None = None
    label: str | None = None
    data_dir: str | None = None  # Fashion-MNIST's idx folder (--data fashion_mnist)
    address: str | None = None
    train_size: int | None = None  # stratified subsets of the splits; None = the whole split
    val_size: int | None = None
    test_size: int | None = None
    smoke_test: bool = False
    resume: bool = False
    max_failures: int = 1
    retrain: bool = True  # False: no final model and no test evaluation
    # auto: retrain the best config if it fits the time left (or a close one: budget.choose_final), else use
    # its checkpoint (None: auto; with --smoke-test, checkpoint: the cheapest final model)
    final_model: str | None = None
    # The retrained final model averages up to this many trainings of its config (seeds seed, seed + 1,
    # ...), as many as fit in the time budget left; None: up to MAX_ENSEMBLE with a budget, else 1.
    ensemble: int | None = None
    # The whole experiment (start-up, search, final model) ends within this many seconds; None: no limit.
    time_budget_s: float | None = None
    # Values kept of some keys of the space (a budget's plan, or the smoke test's cheapest architecture);
    # None: the space as defined. Stored in settings.json, so a resumed search sees the same space.
    space_values: dict[str, list[Any]] | None = None
    # True: the model-based searchers draw every key every time, as if the space had no conditions (units_3 at
    # two layers too); for comparisons only (scripts/benchmark.py --sections conditions).
    flat_space: bool = False

    def __post_init__(self) -> None:
        # Values the user gives always win; the smoke test only fills what was left unset.
        if self.smoke_test:
            self.train_size = self.train_size or SMOKE_SUBSET["train"]
            self.val_size = self.val_size or SMOKE_SUBSET["val"]
            self.test_size = self.test_size or SMOKE_SUBSET["test"]
            self.max_epochs = self.max_epochs or SMOKE_MAX_EPOCHS
            self.num_samples = self.num_samples or SMOKE_MAX_SAMPLES
            # One trial at a time: one worker process to start (seconds of imports each), any machine's speed.
            self.max_concurrent = self.max_concurrent or 1
            self.final_model = self.final_model or "checkpoint"
        self.final_model = self.final_model or "auto"
        self.max_epochs = 10 if self.max_epochs is None else self.max_epochs
        self.min_epochs = 1 if self.min_epochs is None else self.min_epochs
        if self.num_samples is None and (self.searcher == "grid" or self.time_budget_s is None):
            self.num_samples = 1 if self.searcher == "grid" else 10
        if self.name is None:
            self.name = f"{self.space}_{self.searcher}" + ("_smoke" if self.smoke_test else "")
        if self.data != FASHION_MNIST:  # a resume from another folder reads the same files
            self.data = str(Path(self.data).expanduser().resolve())
        if self.image_size is not None:  # "48" and "48x48" are one setting (compared on resume)
            height, width = parse_image_size(str(self.image_size))
            self.image_size = f"{height}x{width}"

    def data_source(self) -> DataSource:
        """What --data and its options name (rtune_fashion.sources).

        Raises:
            DataError: an --image-size that is not HEIGHTxWIDTH.
        """
        size = parse_image_size(self.image_size) if self.image_size else None
        return DataSource(self.data, self.color, size, self.label, self.data_dir)

    @property
    def experiment_uri(self) -> str:
        """Where Tune writes the experiment: ``<storage>/<name>``, a path or a URI."""
        if storage.is_uri(self.storage):
            return storage.join(self.storage, str(self.name))
        return str(Path(self.storage).expanduser().resolve() / str(self.name))

    @property
    def storage_root(self) -> str:
        """Tune's ``storage_path``: the URI, or the resolved local path."""
        return self.storage if storage.is_uri(self.storage) else str(Path(self.experiment_uri).parent)

    @property
    def experiment_dir(self) -> Path:
        """The local directory of rtune's files: the experiment directory, or a URI's local mirror."""
        if storage.is_uri(self.storage):
            return storage.mirror_dir(self.experiment_uri)
        return Path(self.experiment_uri)

    def subset(self) -> dict[str, int] | None:
        sizes = {"train": self.train_size, "val": self.val_size, "test": self.test_size}
        sizes = {split: n for split, n in sizes.items() if n is not None}
        return sizes or None

    def check(self) -> None:
        """Refuse impossible budgets and resources before anything starts.

        Raises:
            ExperimentError: naming the setting, its value and what is accepted.
        """
        positive_ints = {"num_samples": self.num_samples, "max_epochs": self.max_epochs, "min_epochs": self.min_epochs,
                         "brackets": self.brackets, "ensemble": self.ensemble}  # fmt: skip
        for name, value in positive_ints.items():
            if value is None and name in ("num_samples", "brackets", "ensemble"):  # chosen later (see each field)
                continue
            if not isinstance(value, int) or value < 1:
                raise ExperimentError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}.")
        if self.brackets is not None and self.scheduler == "fifo":
            raise ExperimentError(f"--brackets {self.brackets} has no effect with --scheduler fifo (it stops no "
                                  "trial early). Fix: leave --brackets out, or use asha.")  # fmt: skip
        if self.min_epochs > self.max_epochs:
            raise ExperimentError(
                f"--min-epochs {self.min_epochs} is more than --max-epochs {self.max_epochs}: no trial could be "
                "stopped early. Fix: a --min-epochs of at most --max-epochs (1: stop after the first epoch)."
            )
        if self.cpus_per_trial is not None and not self.cpus_per_trial > 0:
            raise ExperimentError(f"--cpus-per-trial must be above 0, got {self.cpus_per_trial!r}.")
        if self.gpus_per_trial is not None and not self.gpus_per_trial >= 0:
            raise ExperimentError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial!r}.")
        if (self.gpus_per_trial or 0) > 1 and not float(self.gpus_per_trial).is_integer():  # type: ignore[arg-type]
            raise ExperimentError(
                f"--gpus-per-trial {self.gpus_per_trial} is not possible: above 1 it must be a whole number "
                "of GPUs (fractions share one GPU)."
            )
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ExperimentError(f"--max-concurrent must be a positive integer, got {self.max_concurrent!r}.")
        if self.final_model not in FINAL_MODEL_CHOICES:
            raise ExperimentError(
                f"--final-model must be one of {', '.join(FINAL_MODEL_CHOICES)}, got {self.final_model!r}."
            )
        if (self.ensemble or 1) > 1 and (self.final_model == "checkpoint" or not self.retrain):
            made = "--no-retrain" if not self.retrain else "--final-model checkpoint"
            raise ExperimentError(f"--ensemble {self.ensemble} has no effect with {made}: an ensemble is made of "
                                  "retrainings. Fix: leave --ensemble out, or --final-model retrain (or auto).")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ExperimentError(f"--time-budget must be a positive number of seconds, got {self.time_budget_s!r}.")
        self.data_source().check_options()
        if self.max_failures < -1:
            raise ExperimentError(f"--max-failures must be -1 (retry forever) or more, got {self.max_failures}.")
        name = str(self.name)
        if not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
            raise ExperimentError(f"--name {name!r} must be one folder name (the experiment's folder under "
                                  "--storage), without / or \\. Fix: --name my_search, and --storage for the "
                                  "folder above it.")  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Small helpers


def start_ray(address: str | None = None) -> bool:
    """Start a local Ray (``address`` None) or join a cluster, unless already connected; return whether this
    call started it. Workers get rtune's runtime env; a local Ray gets the CPUs this process may use."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "runtime_env": WORKER_RUNTIME_ENV,
        "logging_level": logging.WARNING,
        "log_to_driver": True,
    }
    if address is None:
        kwargs["include_dashboard"] = False
        # The CPUs this process may run on (taskset, cpusets, a cgroup quota), not all the machine's.
        kwargs["num_cpus"] = usable_cpus()
    # "local": a new Ray of this machine, never the last cluster `ray start` left running (Ray's default for
    # address=None); joining a cluster is what --address is for.
    ray.init(address=address or "local", **kwargs)
    return True


def _largest_node(resource: str) -> float:
    """The most of ``resource`` ("CPU", "GPU") that one live node of the Ray cluster has."""
    return max((node["Resources"].get(resource, 0) for node in ray.nodes() if node["Alive"]), default=0)


def _choose_resources(settings: ExperimentSettings, echo: Callable[[str], None]) -> None:
    """Fill in the resources per trial left unset (:func:`rtune_fashion.resources.choose`), and say so when
    GPUs were chosen for the user."""
    nodes = resources.gpu_nodes() if settings.gpus_per_trial is None else []
    chosen = resources.choose(settings.cpus_per_trial, settings.gpus_per_trial, nodes)
    settings.cpus_per_trial, settings.gpus_per_trial = chosen.cpus_per_trial, chosen.gpus_per_trial
    if chosen.line:
        echo(f"Resources: {chosen.line}")


def _check_trial_fits(settings: ExperimentSettings) -> None:
    """Refuse resources per trial that no live node has and no node type of the cluster's autoscaler would
    have (:func:`rtune_fashion.cluster.fits_somewhere`): its trials would wait for ever. A request that only a
    node the autoscaler may start meets is fine: the autoscaler sees the waiting trials and starts it.

    Raises:
        ExperimentError: naming the request and the largest node (or node type) there is.
    """
    fits, largest = cluster.fits_somewhere(settings.cpus_per_trial, settings.gpus_per_trial)
    if not fits:
        asked = (f"--gpus-per-trial {settings.gpus_per_trial:g}" if settings.gpus_per_trial > 0
                 else f"--cpus-per-trial {settings.cpus_per_trial:g}")  # fmt: skip
        raise ExperimentError(
            f"{asked} cannot be met: {largest}, so trials would wait forever. Fix: lower {asked.split()[0]}, or "
            "join a cluster with larger nodes (--address; on a ray up cluster, a node type with them in "
            "cluster.yaml)."
        )


# The dataset reaches the trials through Ray's object store: tune.with_parameters puts it once, each node that
# runs trials holds a copy that its trials read in place, and the final step's task takes it once more. So it
# may fill at most this share of the smallest such node's object store (docs/MEASURED.md, "Data at scale").
OBJECT_STORE_SHARE = 0.5


def data_bytes(data: Any) -> int:
    """The bytes of the NumPy arrays a dataset holds (an image Dataset's six, a table's two)."""
    fields = dataclasses.fields(data) if dataclasses.is_dataclass(data) else ()
    return sum(value.nbytes for f in fields if hasattr(value := getattr(data, f.name), "nbytes"))


def _check_data_fits_object_store(data: Any) -> None:
    """Refuse a dataset above :data:`OBJECT_STORE_SHARE` of the smallest object store among the live nodes that
    can run trials and the driver's node, before anything is written: Ray would spill it to disk and every
    trial would wait for it.

    Raises:
        ExperimentError: naming the dataset's size, the limit, the node and the fixes.
    """
    here = ray.get_runtime_context().get_node_id()  # the driver's node holds the put copy, trials or not
    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("object_store_memory")
             and (n["Resources"].get("CPU", 0) > 0 or n["NodeID"] == here)]  # fmt: skip
    if not nodes:
        return
    smallest = min(nodes, key=lambda n: n["Resources"]["object_store_memory"])
    store = smallest["Resources"]["object_store_memory"]
    size = data_bytes(data)
    if size <= OBJECT_STORE_SHARE * store:
        return
    fits = ""
    if isinstance(data, Dataset):
        per_example = size / sum(data.sizes().values())
        fits = (f"a stratified subset (--train-size, --val-size, --test-size; about "
                f"{int(OBJECT_STORE_SHARE * store / per_example):,} examples in all fit), ")  # fmt: skip
    raise ExperimentError(
        f"The dataset takes {size / 1e9:.2f} GB as arrays, more than {OBJECT_STORE_SHARE:.0%} of the object store "
        f"of Ray node {smallest['NodeManagerAddress']} ({store / 1e9:.2f} GB), through which it reaches the trials "
        f"(a copy per node, and one more for the final model). Nothing was written. Fix: {fits}a larger object "
        "store (ray start --object-store-memory BYTES on each node), or nodes with more memory."
    )


# ---------------------------------------------------------------------------------------------------
# Results


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


# ---------------------------------------------------------------------------------------------------
# Retraining a trial's config (on a Ray worker, with the trial's resources)


def _retrain(config: dict[str, Any], data: Dataset, epochs: int, seed: int, schedule_epochs: int, members: int,
             deadline: float, cpus: float, gpus: float) -> dict:  # fmt: skip
    """Train ``config`` from scratch for ``epochs`` (a learning-rate schedule spans ``schedule_epochs``, as in
    the search; no validation between epochs), up to ``members`` times with consecutive seeds while they
    fit before ``deadline``, a ``time.time()`` timestamp, so the time a Ray task waits and starts counts
    too (an ensemble: :func:`rtune_fashion.retrain.train_and_test`), then evaluate it once on val and test;
    the metrics and the saved model's bytes."""
    from rtune_fashion import devices
    from rtune_fashion.retrain import train_and_test

    devices.configure(cpus, gpus)
    model, outcome = train_and_test(config, data, epochs=epochs, seed=seed, schedule_epochs=schedule_epochs,
                                    validate_each_epoch=False, max_members=members, deadline=deadline)
    outcome["model_bytes"] = _model_bytes(model)
    return outcome


# ---------------------------------------------------------------------------------------------------
# The experiment


def prepare(settings: ExperimentSettings) -> tuple[SearchSpace, SearchPlan]:
    """Every check that needs no Ray and no data: settings, space, searcher pairing.

    The space is the named one restricted to ``settings.space_values`` (the smoke test's cheapest
    architecture when none are given).
    """
    settings.check()
    space = get_space(settings.space)
    validate_search_space(space)
    if settings.smoke_test and settings.space_values is None and not settings.resume:
        settings.space_values = budget.cheapest_values(space)
    if settings.space_values:
        space = space.restricted(settings.space_values)
        validate_search_space(space)
    plan = make_search(settings.searcher, settings.scheduler, space, max_epochs=settings.max_epochs,
                       seed=settings.seed, min_epochs=settings.min_epochs, brackets=settings.brackets,
                       max_concurrent=settings.max_concurrent, conditional=not settings.flat_space)  # fmt: skip
    return space, plan


def _check_experiment_dir(settings: ExperimentSettings, trainable: TrialFunction,
                          options: dict[str, Any]) -> dict[str, Any] | None:  # fmt: skip
    """Refuse --resume without an experiment, and a new run over an existing one (nothing is touched); on
    resume, fill the settings left unset from the stored ones and return what settings.json holds."""
    experiment_dir = settings.experiment_uri
    storage.check_writable(settings.storage)
    can_restore = tune.Tuner.can_restore(experiment_dir)
    if settings.resume and not can_restore:
        raise ExperimentError(
            f"--resume: {experiment_dir} holds no experiment to resume. Fix: check --storage and --name "
            "(the experiment directory is <storage>/<name>), or run without --resume to start it."
        )
    if not settings.resume and can_restore:
        raise ExperimentError(
            f"{experiment_dir} already holds an experiment. Fix: add --resume to continue it, or give "
            "another --name (nothing was changed)."
        )
    if not settings.resume and storage.is_uri(settings.storage):
        storage.clear_mirror(experiment_dir)
    if settings.resume:
        local = storage.local_copy(experiment_dir)
        _refuse_finished(settings, local)
        stored = _stored_for_resume(settings, trainable, options, local)
        tune_state.check_resumable(local, experiment_dir)
        return stored
    return None


def _stored_for_resume(settings: ExperimentSettings, trainable: TrialFunction, options: dict[str, Any],
                       local: Path, keys: tuple[str, ...] = RESUME_FIXED) -> dict[str, Any]:  # fmt: skip
    """What settings.json holds of the experiment in ``local``; the planned settings left unset are filled from
    it, and a different search (``keys``), trainable or trainable options are refused
    (:func:`_check_same_search`)."""
    stored = _read_stored(local)
    for key in (*PLANNED, "cpus_per_trial", "gpus_per_trial"):  # left unset: what it was started with
        if getattr(settings, key) is None:
            setattr(settings, key, stored["settings"].get(key))
    _check_same_search(settings, stored, trainable, keys)
    if stored.get("trainable_options", {}) != options:
        raise ExperimentError(
            f"Cannot resume {settings.experiment_uri} with trainable options {options}: it was started with "
            f"{stored.get('trainable_options', {})}. Fix: resume with the same options (for example --folds)."
        )
    return stored


def _is_finished(local: Path) -> bool:
    """An experiment is finished once its summary.json is written (its last step)."""
    return (local / SUMMARY_FILE).exists()


def _refuse_finished(settings: ExperimentSettings, local: Path) -> None:
    """A finished experiment (its summary.json written) is never resumed: that would retrain, read the test
    set a second time and overwrite its summary and model."""
    summary_path = local / SUMMARY_FILE
    if not _is_finished(local):
        return
    try:
        test = (json.loads(summary_path.read_text()).get("final_model") or {}).get("test_accuracy")
    except (OSError, ValueError, AttributeError):
        test = None
    result = f" (test accuracy {test:.4f})" if isinstance(test, int | float) else ""
    raise ExperimentError(
        f"{settings.experiment_uri} is finished{result}: its {SUMMARY_FILE} is written, and a resume would "
        "retrain its final model, read the test set again and overwrite its results. Nothing was changed. Fix: "
        f"rtune report {settings.experiment_uri} to look at it, rtune train --config ... to retrain its best "
        "config, or a new --name to search again."
    )


def publish(settings: ExperimentSettings, *names: str) -> None:
    """Copy rtune's files next to Tune's when the storage is a URI (a path needs nothing)."""
    if storage.is_uri(settings.storage):
        storage.upload(settings.experiment_dir, settings.experiment_uri, names)


def _check_cluster_storage(settings: ExperimentSettings, echo: Callable[[str], None]) -> None:
    warning = storage.check_shared(settings.storage, cluster.possible_hosts())
    if warning:
        echo(warning)


def _qualified_name(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _read_stored(experiment_dir: Path) -> dict[str, Any]:
    path = experiment_dir / SETTINGS_FILE
    try:
        stored = json.loads(path.read_text())
        stored["settings"]  # noqa: B018 - the key must be there
        return stored
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ExperimentError(
            f"{experiment_dir} is not an rtune experiment directory (cannot read {SETTINGS_FILE}: {error}). "
            "Fix: give the directory <storage>/<name> of an experiment started by rtune."
        ) from error


def _check_same_search(settings: ExperimentSettings, stored: dict[str, Any], trainable: TrialFunction,
                       keys: tuple[str, ...] = RESUME_FIXED) -> None:  # fmt: skip
    """Refuse to resume with settings (of ``keys``), a space definition or a trainable that differ from the
    experiment's."""
    before = {"min_epochs": 1, "flat_space": False, "data": FASHION_MNIST, "color": None, "image_size": None,
              "label": None, **stored["settings"]}  # experiments from before these flags
    differ = [key for key in keys if before.get(key) != getattr(settings, key)]
    if differ:
        changed = "; ".join(f"{key}: {before.get(key)!r} when started, {getattr(settings, key)!r} now"
                            for key in differ)  # fmt: skip
        why = (": Ray restores the trials' resources, --max-concurrent and --max-failures with the search, so new "
               "values would be ignored or mixed with the old" if set(differ) & set(RESTORED_BY_RAY) else "")
        fix = ("run the same pima_grid.py command again with --resume" if stored.get("trainable") ==
               CROSS_VALIDATED_TRAINABLE else f"rtune resume {settings.experiment_uri} (it reuses the stored settings)")
        raise ExperimentError(f"Cannot resume {settings.experiment_uri} with a different search ({changed}){why}. "
                              f"Fix: {fix}, or start a new experiment with another --name.")  # fmt: skip
    if stored.get("trainable", _qualified_name(train_trial)) != _qualified_name(trainable):
        raise ExperimentError(
            f"Cannot resume {settings.experiment_uri} with trainable {_qualified_name(trainable)}: it was "
            f"started with {stored['trainable']}. Fix: resume with the same trainable."
        )
    space = get_space(settings.space)
    if stored.get("space_fingerprint") != fingerprint(space):
        raise ExperimentError(
            f"Cannot resume {settings.experiment_uri}: the search space {space.name!r} has changed since the "
            "experiment started, and a search cannot continue over a different space. Fix: restore the "
            "space's old definition, or start a new experiment with another --name."
        )


def _interrupted(saved: ExperimentRecord, settings: ExperimentSettings, space: SearchSpace) -> bool:
    """Whether Tune returned early (Ctrl+C), from ``saved``: the experiment as Tune's last state save left it (what a
    resume restores), read with ``search_done=False``. A trial left running or pending there, or fewer trials than
    asked for (hyperopt, Optuna and BOHB make them one by one), means an interrupted search. (Tune's result grid
    cannot say: on Ctrl+C it marks every trial TERMINATED after that save, even those that never started.) Paused
    trials do not count: BOHB's search ends with some (a Ctrl+C while every trial exists and every unfinished one is
    paused is taken for an end). A search that ran out of its time budget is not asked about: it ended as asked,
    whatever it left (:func:`_budget_left`)."""
    unfinished = sum(trial.state in ("RUNNING", "PENDING") for trial in saved.trials)
    # A grid's generator (max_concurrent) may not have made every point's trial yet when the search stopped. (With
    # points to evaluate, Ray expands each point's grid on its own: the count is not grid_points x passes.)
    expected = int(settings.num_samples or 0) * (space.grid_points if space.is_grid else 1)
    too_few = len(saved.trials) < expected and not (space.is_grid and space.points_to_evaluate)
    return unfinished > 0 or too_few


def _budget_left(experiment_dir: Path, *, fallback: float) -> float:
    """Seconds left of Tune's time budget in the newest experiment state saved in ``experiment_dir``: Tune saves its
    TimeoutStopper there, counting down while a search runs, and Tuner.restore brings it back, so a resumed search
    (after Ctrl+C, SIGTERM or SIGKILL alike) gets what is left, never the whole budget again. ``fallback`` when the
    state or its stopper cannot be read (Ray keeps the stopper in a cloudpickle inside its JSON: our own run's file).
    """
    from ray import cloudpickle
    from ray.tune.stopper import CombinedStopper, TimeoutStopper

    try:
        newest = max(Path(experiment_dir).glob("experiment_state-*.json"))  # Ray's names sort by time, as it picks
        payload = json.loads(newest.read_text())["runner_data"]["_stopper"]["value"]
        stopper = cloudpickle.loads(bytes.fromhex(payload))
    except (ValueError, KeyError, TypeError, OSError, EOFError, AttributeError, ImportError):
        return fallback
    stoppers = stopper._stoppers if isinstance(stopper, CombinedStopper) else [stopper]
    left = [float(s._budget) for s in stoppers if isinstance(s, TimeoutStopper)]
    return min(left) if left else fallback


def _make_tuner(
    settings: ExperimentSettings,
    space: SearchSpace,
    plan: SearchPlan,
    data: Dataset,
    trial_fn: TrialFunction,
    echo: Callable[[str], None],
    options: dict[str, Any],
    *,
    search_budget: float | None = None,
    deadline: float | None = None,
) -> tune.Tuner:
    """A new Tuner, or the interrupted one restored (Tune keeps the space, searcher and trial states)."""
    trainable = tune.with_resources(
        tune.with_parameters(trial_fn, data=data, max_epochs=settings.max_epochs, seed=settings.seed, **options),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    if settings.resume:
        return tune.Tuner.restore(settings.experiment_uri, trainable, resume_unfinished=True)
    # The random and grid generators take the limit themselves (make_search); Tune ignores it for them.
    concurrency = None if isinstance(plan.search_alg, BasicVariantGenerator) else settings.max_concurrent
    param_space, num_samples = plan.param_space, settings.num_samples
    if space.is_grid and (num_samples or 1) > 1:
        # Tune would repeat each point with the same config, so the same seed: N identical runs. A "repeat"
        # axis gives each pass its own seeds (trial_seed hashes the config), and one pass over the whole grid.
        param_space, num_samples = {**param_space, "repeat": tune.grid_search(list(range(num_samples)))}, 1
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=plan.search_alg,
            scheduler=plan.scheduler,
            num_samples=num_samples,
            max_concurrent_trials=concurrency,
            time_budget_s=search_budget,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.storage_root,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,  # Tune's tables are too wide to read; ProgressPrinter prints short lines instead
            callbacks=[ProgressPrinter(echo, settings.max_epochs, deadline=deadline)],
        ),
    )


FINAL_STEP_WAIT_S = 5.0  # how long the final step waits for a whole node's CPUs before taking what is free


def _final_resources(settings: ExperimentSettings) -> tuple[float, float]:
    """(CPUs, GPUs) of the final model's task. It runs alone after the search, so without GPUs it takes
    every CPU of the largest node rather than one trial's share; with GPUs, one trial's resources."""
    cpus = settings.cpus_per_trial
    if settings.gpus_per_trial == 0:
        cpus = max(cpus, _largest_node("CPU"))
    return cpus, settings.gpus_per_trial


def _run_final_step(settings: ExperimentSettings, in_driver: bool, function: Callable[..., dict],
                    *args: Any) -> dict:  # fmt: skip
    """``function(*args, cpus, gpus)`` with the final model's resources: in this process when ``in_driver``
    (this process started a Ray of its own machine, which has no GPU: the search is over, the machine is free,
    and this process has Keras loaded already, while a new worker would import it again, 10 s on a slow
    machine), else as a Ray task (on a cluster, a GPU node)."""
    cpus, gpus = _final_resources(settings)
    if in_driver:
        return function(*args, cpus, gpus)
    if gpus == 0 and len([node for node in ray.nodes() if node["Alive"]]) == 1:  # a count per node: one node only
        cpus = _free_cpus(cpus, least=settings.cpus_per_trial)
    return _result_or_cancel(ray.remote(function).options(num_cpus=cpus, num_gpus=gpus).remote(*args, cpus, gpus))


def _result_or_cancel(task: ray.ObjectRef, timeout: float | None = None) -> Any:
    """``ray.get(task, timeout=timeout)``. Left without its result (the timeout, Ctrl+C in a notebook, an error
    here), the task is cancelled: else it would run on, or wait in Ray's queue and take its CPUs (and GPU)
    whenever they came free, in a Ray that outlives this call (a cluster, a notebook's Ray)."""
    try:
        return ray.get(task, timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):  # best effort: never in place of the error that got us here
            ray.cancel(task, force=True)
        raise


def _free_cpus(wanted: float, *, least: float) -> float:
    """``wanted`` CPUs once the (one-node) cluster has them free (the search's actors take a moment to go), else
    after FINAL_STEP_WAIT_S what is free then, and never fewer than ``least``: a task that asks for the whole node
    while another job (or a CPU Ray never gave back) holds part of it waits for ever."""
    deadline = time.monotonic() + FINAL_STEP_WAIT_S
    while (free := ray.available_resources().get("CPU", 0.0)) < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    return max(least, min(wanted, free))


def run_experiment(
    settings: ExperimentSettings,
    echo: Callable[[str], None] = print,
    *,
    trainable: TrialFunction = train_trial,
    data: Any = None,
    trainable_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the experiment and return its summary (also written to summary.json).

    ``trainable`` replaces :func:`train_trial` (same reporting contract), for example to train on another
    dataset or to cross-validate (:func:`rtune_fashion.crossval.train_cv`). ``data`` replaces Fashion-MNIST
    (it travels to the trials through the object store); a final model is made and tested only when it is
    an image :class:`Dataset` with a test split. ``trainable_options`` are passed to every trial as keyword
    arguments (stored in settings.json).

    With ``settings.time_budget_s`` the whole run ends within the budget: a new search of an image dataset
    is first fitted to this machine (:mod:`rtune_fashion.budget`: training subset, trials, space values),
    the search gets what is left after the final model's share, and the final model is the best config
    retrained when its measured training time fits in what is left (or a close config that fits all the
    data when the best fits at most half: :func:`budget.choose_final`), else the best trial's own checkpoint.

    Raises:
        RtuneError (a subclass of it): bad settings, space, searcher pairing, data, storage or resources
            (before Ray starts where possible), a budget too short for one epoch (before the search when
            the measurement shows it, else after it, with nothing lost), or a search in which every trial
            failed.
    """
    started = time.time()
    quiet.quiet_tune_driver()
    space, search = prepare(settings)  # every check that touches nothing comes first
    stored = _check_experiment_dir(settings, trainable, trainable_options or {})
    if stored is not None:  # the stored space values and planned settings are filled in now
        space, search = prepare(settings)
    planning = _fits_to_budget(settings, space, data, trainable)
    plan = budget.Plan.from_dict(stored["plan"]) if stored and stored.get("plan") else None  # a resumed plan
    if settings.num_samples is None and not planning:  # a budget with no plan (custom trainable, grid, ...)
        settings.num_samples = 1 if space.is_grid else 10
    if data is None:
        sizes = settings.subset()
        if planning or plan:  # the plan chooses (chose) the search's subsets; the final model may see all
            sizes = {"test": settings.test_size} if settings.test_size else None
        data = settings.data_source().load(subset=sizes, subset_seed=settings.seed, echo=echo)
    if isinstance(data, Dataset) and trainable is train_trial:
        check_fits_data(space, data.input_shape, settings.data_source().describe())
    if stored and isinstance(data, Dataset):
        _check_same_data(settings, stored, data)
    experiment_dir = settings.experiment_dir

    # Save Tune's experiment state (what --resume restores) at most every second instead of Ray's
    # adaptive default, so an interrupted search loses at most a second of bookkeeping.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # else Tune prints its own header even at verbose=0
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # snapshots are wanted
    started_ray = start_ray(settings.address)
    try:
        _choose_resources(settings, echo)
        _check_trial_fits(settings)
        _check_data_fits_object_store(data)
        _check_cluster_storage(settings, echo)
        search_data = data
        if planning:  # the search trains on the plan's subset; the final model may see all of ``data``
            plan, search_data = _fit_to_budget(settings, space, data, started, echo)
            space, search = prepare(settings)
        elif plan and isinstance(data, Dataset):  # resumed: the same subset as when it started
            search_data = plan_subset(data, plan, settings.seed)
        experiment_dir.mkdir(parents=True, exist_ok=True)
        makes_final = settings.retrain and isinstance(data, Dataset) and len(data.y_test) > 0
        deadline, search_budget = _deadlines(settings, started, plan, makes_final, stored)
        if not settings.resume:
            stored = {
                "started_at": started,
                "settings": dataclasses.asdict(settings),
                "space_fingerprint": fingerprint(get_space(settings.space)),
                "trainable": _qualified_name(trainable),
                "trainable_options": trainable_options or {},
                "plan": plan.to_dict() if plan else None,
                "search_budget_s": search_budget,  # Tune's budget: a resume gets what its saved state has left
                "data": data_summary(settings.data_source().describe(), data) if isinstance(data, Dataset) else None,
            }
            write_atomic(experiment_dir / SETTINGS_FILE, json.dumps(stored, indent=2))
            publish(settings, SETTINGS_FILE)
        trials = (f"{settings.num_samples} pass(es) over {space.grid_points} grid points" if space.is_grid
                  else f"{settings.num_samples} trials")  # fmt: skip
        echo(f"{'Resuming' if settings.resume else 'Searching'} {space.name} with {search.searcher} + "
             f"{search.scheduler_name}: {trials} of up to {settings.max_epochs} epochs, "
             f"{settings.cpus_per_trial:g} CPU and {settings.gpus_per_trial:g} GPU per trial.")
        if deadline is not None:
            echo(f"Time budget {format_elapsed(settings.time_budget_s).strip()}: the search ends by "
                 f"{_clock(time.time() + search_budget)}, the whole run by {_clock(deadline)}.")
        echo(f"Watch it: tensorboard --logdir {settings.experiment_uri}   |   rtune report {settings.experiment_uri}")
        tuner = _make_tuner(settings, space, search, search_data, trainable, echo, trainable_options or {},
                            search_budget=search_budget, deadline=deadline)  # fmt: skip
        fit_started = time.time()
        results = tuner.fit()
        search_time = time.time() - started
        fit_time = time.time() - fit_started
        saved = storage.local_copy(settings.experiment_uri)
        record = load_experiment(saved, search_done=False)
        budget_out = search_budget is not None and _budget_left(saved, fallback=search_budget - fit_time) <= 0
        interrupted = not budget_out and _interrupted(record, settings, space)
        if not interrupted and any(trial.state in LIVE_STATES for trial in record.trials):
            record = load_experiment(saved, search_done=True)  # BOHB's paused trials: stopped early or finished
        write_trials_csv(record)
        publish(settings, TRIALS_FILE)
        if interrupted:
            raise ExperimentInterrupted(settings.experiment_uri)
        summary = _summarise(settings, space, search.scheduler_name, record, search_time, plan)
        if isinstance(data, Dataset):
            summary["data"] = data_summary(settings.data_source().describe(), data)
        if makes_final and summary["best"] is not None:
            in_driver = started_ray and settings.address is None and not ray.cluster_resources().get("GPU")
            ranked = [_trial_summary(trial) for trial in record.ranked()]
            summary["final_model"] = _final_model(settings, ranked, data, results, deadline, in_driver=in_driver,
                                                  plan=plan, echo=echo)  # fmt: skip
        summary["wall_time_s"] = time.time() - started
        write_atomic(experiment_dir / SUMMARY_FILE, json.dumps(summary, indent=2, default=str))
        publish(settings, SUMMARY_FILE, BEST_MODEL_FILE)
        return summary
    finally:
        if started_ray:
            ray.shutdown()


# ---------------------------------------------------------------------------------------------------
# Time budget


def _fits_to_budget(settings: ExperimentSettings, space: SearchSpace, data: Any, trainable: TrialFunction) -> bool:
    """Whether this run is fitted to its budget before searching: a new, non-smoke search with a budget,
    of the built-in image data (or an image Dataset) with rtune's own trainable, over a space to sample
    (a grid is a fixed amount of work)."""
    image_data = data is None or isinstance(data, Dataset)
    return (settings.time_budget_s is not None and not settings.resume and not settings.smoke_test
            and image_data and trainable is train_trial and not space.is_grid)  # fmt: skip


def _scheduler_name(settings: ExperimentSettings) -> str:
    return settings.scheduler or default_scheduler(settings.searcher)


def _slots(settings: ExperimentSettings) -> int:
    """Trials that can run at once on the Ray cluster as it is now."""
    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 1) // settings.cpus_per_trial) or 1
    if settings.gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) // settings.gpus_per_trial) or 1)
    return min(slots, settings.max_concurrent or slots)


def _fit_to_budget(settings: ExperimentSettings, space: SearchSpace, data: Dataset, started: float,
                   echo: Callable[[str], None]) -> tuple[budget.Plan, Dataset]:  # fmt: skip
    """Measure this machine on the space's typical config, choose what the budget affords, and apply it to
    ``settings`` (subsets, trials, space values); the plan and the data subset it chose."""
    typical = budget.typical_config(space, data.input_shape, data.num_classes, seed=settings.seed)
    n_train, n_val = (min(budget.PROBE_SIZES[s], len(getattr(data, f"y_{s}"))) for s in ("train", "val"))
    probe = Dataset(data.x_train[:n_train], data.y_train[:n_train], data.x_val[:n_val], data.y_val[:n_val],
                    data.x_test[:0], data.y_test[:0], class_names=data.class_names)  # fmt: skip
    echo(f"Measuring this machine: 2 epochs of {space.name}'s typical config on {n_train} images ...")
    measure = ray.remote(budget.measure_speed).options(num_cpus=settings.cpus_per_trial,
                                                       num_gpus=settings.gpus_per_trial)  # fmt: skip
    limit = budget.MEASURE_SHARE * float(settings.time_budget_s or 0)
    try:
        speed = _result_or_cancel(measure.remote(typical, probe, settings.cpus_per_trial, settings.gpus_per_trial),
                                  timeout=limit)  # fmt: skip
    except ray.exceptions.GetTimeoutError:
        raise ExperimentError(
            f"Measuring this machine took more than {limit:.0f} s ({budget.MEASURE_SHARE:.0%} of --time-budget "
            f"{settings.time_budget_s:g}): either no node can start a task of {settings.cpus_per_trial:g} CPU and "
            f"{settings.gpus_per_trial:g} GPU, or the machine is too slow for this budget. Fix: check "
            "--cpus-per-trial against the CPUs of your nodes, give a larger --time-budget, or --time-budget none."
        ) from None
    request = budget.Request(
        budget_s=float(settings.time_budget_s or 0), elapsed_s=time.time() - started, max_epochs=settings.max_epochs,
        slots=_slots(settings), full_train=len(data.y_train), full_val=len(data.y_val),
        train_size=settings.train_size, val_size=settings.val_size, num_samples=settings.num_samples,
        scheduler=_scheduler_name(settings), min_epochs=int(settings.min_epochs or 1), brackets=settings.brackets,
        final_trainings=_planned_trainings(settings),
    )  # fmt: skip
    plan, fitted = budget.make_plan(request, space, speed, data.input_shape, data.num_classes, seed=settings.seed)
    settings.train_size, settings.val_size, settings.num_samples = plan.train_size, plan.val_size, plan.num_samples
    if plan.dropped:
        settings.space_values = {**(settings.space_values or {}),
                                 **{key: fitted.values_of(key) for key in plan.dropped}}  # fmt: skip
    echo(budget.describe_plan(plan, settings.cpus_per_trial, settings.gpus_per_trial))
    return plan, plan_subset(data, plan, settings.seed)


def _planned_trainings(settings: ExperimentSettings) -> int:
    """Trainings on all the data the plan keeps room for: ``--ensemble`` as given, else
    :data:`budget.PLANNED_TRAININGS` (at most MAX_ENSEMBLE); one for a checkpoint as the final model (its
    evaluation, and a margin), none with ``--no-retrain`` (no final model: the search has all the time)."""
    if not settings.retrain:
        return 0
    if settings.final_model == "checkpoint":
        return 1
    return settings.ensemble or min(budget.PLANNED_TRAININGS, MAX_ENSEMBLE)


def plan_subset(data: Dataset, plan: budget.Plan, seed: int) -> Dataset:
    """The subsets of ``data`` that a plan's search trains and validates on (the same draw on resume)."""
    return data.subset({"train": plan.train_size, "val": plan.val_size}, seed=seed)


def _deadlines(settings: ExperimentSettings, started: float, plan: budget.Plan | None, makes_final: bool,
               stored: dict[str, Any] | None) -> tuple[float | None, float | None]:  # fmt: skip
    """(when the whole run must end, the search's own time budget in seconds); (None, None) without a budget.

    The final model's share is the plan's reserve, or :data:`budget.UNPLANNED_FINAL_SHARE` of the budget
    when no plan was made. A resumed search gets what is left of the search budget it started with (what Tune's
    saved state has left: :func:`_budget_left`), and the run's deadline moves with it."""
    if settings.time_budget_s is None:
        return None, None
    reserve = 0.0
    if makes_final:
        reserve = plan.final_reserve_s if plan else budget.UNPLANNED_FINAL_SHARE * settings.time_budget_s
    if settings.resume and stored and stored.get("search_budget_s"):
        # settings.experiment_dir: a URI's mirror, just downloaded by the resume's checks
        left = _budget_left(settings.experiment_dir, fallback=float(stored["search_budget_s"]))
        search_budget = max(1.0, left)
        return time.time() + search_budget + reserve, search_budget
    deadline = started + settings.time_budget_s
    return deadline, max(1.0, deadline - reserve - time.time())


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


# ---------------------------------------------------------------------------------------------------
# The final model: the best config (or a close one) retrained, or the best trial's checkpoint


def _final_model(settings: ExperimentSettings, ranked: list[dict[str, Any]], data: Dataset,
                 results: tune.ResultGrid, deadline: float | None, *, in_driver: bool,
                 plan: budget.Plan | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """The final model, made as ``settings.final_model`` says (:func:`budget.choose_final`): the best config (of
    ``ranked``, the trials' summaries best first) retrained from scratch for the epochs of its trial's best val
    accuracy, on as much of ``data``'s training split as fits in the time left (a budget's search trained on the
    plan's subset), or a config within :data:`budget.FULL_DATA_MARGIN` of it when only that one fits all the
    data; and again with the next seeds while that fits before the deadline (an ensemble of up to
    ``settings.ensemble``, by default MAX_ENSEMBLE with a budget); or the best trial's last checkpoint (as Keras
    Tuner's ``get_best_models``), which the next trials' checkpoints join while they raise its val accuracy
    (:func:`_evaluate_checkpoints`; not with ``--final-model checkpoint``). Either is evaluated once on
    ``data``'s whole validation and test splits; the model is saved as best_model.keras. ``trial_id`` says whose
    config or checkpoint it is.

    Raises:
        ExperimentError: the checkpoint is wanted and the best trial has none.
    """
    search_train = plan.train_size if plan else len(data.y_train)
    full_train = plan.full_train_size if plan else len(data.y_train)
    share = plan.training_share() if plan else 1.0

    def contender(summary: dict[str, Any]) -> budget.Contender:
        # Retrained for the epochs of its best val accuracy (the ranking's own score, so the winner and its
        # retraining agree), at its measured pace without validation; beside training, the final step evaluates
        # val and test once at the trial's own rate per image, and keeps a margin for starting it and saving.
        trial_s, epochs = summary["trial_time_s"], max(summary["epochs"], 1)
        eval_per_image = trial_s * (1 - share) / epochs / (plan.val_size if plan else 1)
        overhead = eval_per_image * (len(data.y_val) + len(data.y_test)) + budget.FINAL_MARGIN_S
        best_epoch = summary["best_epoch"] or epochs
        return budget.Contender(summary["trial_id"], summary["val_accuracy"], best_epoch,
                                trial_s * share * best_epoch / epochs, overhead)  # fmt: skip

    time_left = math.inf if deadline is None else deadline - time.time()
    chosen, choice = budget.choose_final(settings.final_model, [contender(t) for t in ranked], search_train,
                                         full_train, time_left)  # fmt: skip
    trial = next(t for t in ranked if t["trial_id"] == chosen.trial_id)
    source, why = choice.source, choice.why
    if source == "retrained":
        seed = trial_seed(settings.seed, trial["raw_config"])  # the chosen trial's own seed
        train = data if choice.train_size == len(data.y_train) else data.subset(
            {"train": int(choice.train_size or 0)}, seed=settings.seed)  # fmt: skip
        members = settings.ensemble or (MAX_ENSEMBLE if deadline is not None else 1)
        final_deadline = math.inf if deadline is None else deadline - budget.FINAL_MARGIN_S
        more = (f", then again with the next seeds while they fit (up to {members} in all; a later one for fewer "
                "epochs when only that fits)" if members > 1 else "")  # fmt: skip
        ends = "" if deadline is None else f"; done by {_clock(deadline)}"
        echo(f"Final model: trial {trial['trial_id']}'s config retrained on {len(train.y_train)} images for "
             f"{chosen.epochs} epochs, where its val accuracy peaked ({why}){more}{ends}.")
        outcome = _run_final_step(settings, in_driver, _retrain, trial["raw_config"], train, chosen.epochs, seed,
                                  settings.max_epochs, members, final_deadline)  # fmt: skip
        outcome["train_size"] = len(train.y_train)
        if outcome["members"] > 1:
            fit = f", as many as fit of at most {members}" if deadline is not None else ""
            epochs = "" if len(set(outcome["member_epochs"])) == 1 else f", epochs {outcome['member_epochs']}"
            why += f"; an ensemble of {outcome['members']} trainings (seeds {outcome['member_seeds']}{epochs}){fit}"
    else:
        checkpoints = {r.metrics.get("trial_id"): r.checkpoint for r in results if r.checkpoint is not None}
        if trial["trial_id"] not in checkpoints:
            raise ExperimentError(
                f"The best trial {trial['trial_id']} has no checkpoint to make the final model from. Fix: "
                "--final-model retrain."
            )
        # Chosen for lack of time (auto): the next trials' checkpoints may join it, trained already, each only
        # if it raises the validation accuracy. Asked for (--final-model checkpoint): that one model.
        members = 1 if settings.final_model == "checkpoint" else settings.ensemble or MAX_ENSEMBLE
        others = [t["trial_id"] for t in ranked if t is not trial and t["trial_id"] in checkpoints]
        candidates = [checkpoints[trial["trial_id"]]] + [checkpoints[t] for t in others[:CHECKPOINT_CANDIDATES]]
        batch_size = int(cfg.get(trial["raw_config"], "batch_size"))
        final_deadline = math.inf if deadline is None else deadline - budget.FINAL_MARGIN_S
        outcome = _run_final_step(settings, in_driver, _evaluate_checkpoints, candidates, data, batch_size, members,
                                  final_deadline)  # fmt: skip
        joined = [others[i - 1] for i in outcome.pop("member_index")[1:]]
        if joined:
            outcome["member_trial_ids"] = [trial["trial_id"], *joined]
            why += (f"; averaged with the checkpoints of trial(s) {', '.join(joined)}, each of which raised the "
                    "validation accuracy")  # fmt: skip
        outcome["train_accuracy"] = trial["last_accuracy"]
        outcome["train_size"] = search_train  # the trial's own training set
    write_atomic(settings.experiment_dir / BEST_MODEL_FILE, outcome.pop("model_bytes"))
    outcome.update(source=source, why=why, trial_id=trial["trial_id"], val_size=len(data.y_val),
                   test_size=len(data.y_test), class_names=list(data.class_names))  # fmt: skip
    if trial is not ranked[0]:  # not the best trial's config: say which it is beside the best's
        outcome["config"] = trial["config"]
    return outcome


def _model_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        model.save(Path(directory) / BEST_MODEL_FILE)
        return (Path(directory) / BEST_MODEL_FILE).read_bytes()


def _evaluate_checkpoints(checkpoints: list[tune.Checkpoint], data: Dataset, batch_size: int, members: int,
                          deadline: float, cpus: float, gpus: float) -> dict[str, Any]:  # fmt: skip
    """The first checkpoint's model (the best trial's), joined by the others' (the next trials', best first)
    that raise its validation accuracy, up to ``members`` (:func:`rtune_fashion.retrain.ensemble_of_trained`),
    evaluated once on val and test; the metrics and the saved model's bytes."""
    import functools

    from rtune_fashion import devices
    from rtune_fashion.retrain import ensemble_of_trained
    from rtune_fashion.trainable import load_checkpoint

    def model_of(checkpoint: tune.Checkpoint) -> Any:
        return load_checkpoint(checkpoint)[0]

    devices.configure(cpus, gpus)
    model, state = load_checkpoint(checkpoints[0])
    loaders = [functools.partial(model_of, checkpoint) for checkpoint in checkpoints[1:]]
    final, outcome = ensemble_of_trained(model, loaders, data, batch_size=batch_size, max_members=members,
                                         deadline=deadline)  # fmt: skip
    return {"epochs": int(state["epoch"]), **outcome, "model_bytes": _model_bytes(final)}


def _summarise(
    settings: ExperimentSettings,
    space: SearchSpace,
    scheduler: str,
    record: ExperimentRecord,
    search_time: float,
    plan: budget.Plan | None = None,
) -> dict[str, Any]:
    trial = record.best()
    best = _trial_summary(trial) if trial is not None else None
    if trial is None and record.trials:
        raise _no_result_error(settings, record, plan)
    counts = record.counts()
    return {
        "name": settings.name,
        "experiment_dir": settings.experiment_uri,
        "space": space.name,
        "searcher": settings.searcher,
        "scheduler": scheduler,
        "metric": METRIC,
        "selection": SELECTION,
        "best": best,
        "grid_repeats": grid_repeats(record),  # a grid run N times: each point's mean and spread over its repeats
        "trials": {
            "total": len(record.trials),
            "finished": counts["FINISHED"],
            "stopped_early": counts["STOPPED_EARLY"],
            "diverged": counts["DIVERGED"],
            "errored": counts["ERROR"],
        },
        "errored_trials": [
            {"trial_id": t.trial_id, "state": t.state, "error": t.error}
            for t in record.trials
            if t.state not in OK_STATES
        ],
        "search_time_s": search_time,
        "time_budget_s": settings.time_budget_s,
        "plan": plan.to_dict() if plan else None,
        "settings": dataclasses.asdict(settings),
        "versions": _versions(),
    }


def _check_same_data(settings: ExperimentSettings, stored: dict[str, Any], data: Dataset) -> None:
    """Refuse to resume on data whose classes, example shape or split sizes differ from what the search started
    on (the files at --data changed since): its trials and checkpoints would not fit them.

    Raises:
        ExperimentError: naming what differs.
    """
    before = stored.get("data")  # None: started before issue 16, or on a custom dataset
    now = data_summary(settings.data_source().describe(), data)
    differ = [key for key in ("class_names", "input_shape", "sizes") if before and before.get(key) != now[key]]
    if differ:
        changed = "; ".join(f"{key}: {before[key]} when started, {now[key]} now" for key in differ)
        raise ExperimentError(f"Cannot resume {settings.experiment_uri}: its data changed since it started "
                              f"({changed}). Fix: restore the data as it was, or start a new search (--name).")


def data_summary(source: str, data: Dataset) -> dict[str, Any]:
    """What summary.json keeps of the data: where it came from, the examples' shape, the classes and the sizes
    of the splits (a search under a budget trained on a subset of the training split: see its plan)."""
    return {"source": source, "input_shape": list(data.input_shape), "class_names": list(data.class_names),
            "sizes": data.sizes()}  # fmt: skip


def _trial_summary(trial: TrialRecord) -> dict[str, Any]:
    """What summary.json and the final model keep of a trial."""
    return {
        "trial_id": trial.trial_id,
        "val_accuracy": trial.best_val_accuracy,  # the best epoch's: biased upwards by the max
        "last_val_accuracy": trial.last_val_accuracy,
        "last_accuracy": float(trial.history[-1].get("accuracy", math.nan)),
        "epochs": trial.epochs,
        "best_epoch": trial.best_epoch,  # where its val accuracy peaked: what a retraining of its config trains
        "trial_time_s": sum(float(row.get("epoch_time_s", 0.0)) for row in trial.history),
        "config": trial.effective_config,
        "raw_config": trial.config,
    }


def _no_result_error(settings: ExperimentSettings, record: ExperimentRecord,
                     plan: budget.Plan | None) -> ExperimentError:  # fmt: skip
    """Why a search ended without a single reported epoch: every trial failed, or the budget ran out first."""
    errors = "; ".join(sorted({t.error for t in record.trials if t.error}))[:1000]
    if errors:
        return ExperimentError(
            f"Every trial of {settings.name} failed, so there is no best model. Errors: {errors}. "
            f"Details: the error.txt files under {settings.experiment_uri}."
        )
    if settings.time_budget_s is None:
        return ExperimentError(
            f"The search {settings.name} ended before any of its {len(record.trials)} trial(s) reported a result, "
            f"so there is no best model. Tune's state and trials.csv are in {settings.experiment_uri}. Fix: look "
            "for an error above, then run it again under another --name."
        )
    measured = (f"; this machine's first epoch of the space's cheapest config was predicted at "
                f"{plan.cheapest_first_epoch_s:.0f} s from a measurement" if plan else "")  # fmt: skip
    return ExperimentError(
        f"The time budget ({settings.time_budget_s:g} s) ended before any of the {len(record.trials)} trial(s) "
        f"finished its first epoch{measured}, so there is no result to keep. Tune's state and trials.csv are in "
        f"{settings.experiment_uri}, but Tune ends out-of-time trials for good, so a resume would train nothing. "
        "Fix: run again with a larger --time-budget (or --time-budget none), a smaller --train-size, or a "
        "cheaper space, under another --name."
    )


def _versions() -> dict[str, str]:
    import keras

    return {"ray": ray.__version__, "keras": keras.__version__, "backend": keras.backend.backend()}


def load_settings(experiment_dir: str | os.PathLike) -> ExperimentSettings:
    """The settings an experiment was started with, for ``rtune resume``.

    Raises:
        ExperimentError: the directory has no readable settings.json.
    """
    location = str(experiment_dir)
    directory = storage.local_copy(location).resolve()
    if storage.is_uri(location):
        parent, _, name = location.rstrip("/").rpartition("/")
    else:
        parent, name = str(directory.parent), directory.name
    everything = _read_stored(directory)
    if everything.get("trainable") == CROSS_VALIDATED_TRAINABLE:
        raise ExperimentError(
            f"{location} is a cross-validated grid (experiments/pima_grid.py), which rtune resume cannot continue: "
            "its trials need the table and the folds. Fix: run the same pima_grid.py command again with --resume."
        )
    stored = dict(everything["settings"])
    stored.update(storage=parent, name=name, resume=True)
    return ExperimentSettings(**stored)


def experiment_state(settings: ExperimentSettings, trainable: TrialFunction, options: dict[str, Any]) -> str:
    """``"new"`` (nothing to resume), ``"started"`` (Tune can resume it) or ``"finished"`` (summary.json written).

    Raises:
        ExperimentError: what is there is another search, trainable or options (as a resume refuses it).
    """
    if not tune.Tuner.can_restore(settings.experiment_uri):
        return "new"
    local = storage.local_copy(settings.experiment_uri)
    finished = _is_finished(local)  # shown, not run again: its resources no longer matter
    _stored_for_resume(settings, trainable, options, local, SEARCH_DEFINING if finished else RESUME_FIXED)
    return "finished" if finished else "started"

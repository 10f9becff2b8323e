"""Run one experiment: validate, start Ray, search, retrain the best config, test it once, write results.

Everything an experiment writes lives in ``<storage>/<name>/``:

* Ray Tune's trial folders (results, checkpoints, TensorBoard event files) and its restore state;
* ``settings.json`` (what was asked, so ``rtune resume DIR`` can continue it);
* ``trials.csv`` (one row per trial), ``summary.json`` (best config, val and test accuracy, timings,
  trial counts, errored trials), ``best_model.keras`` (the retrained best model).

``trials.csv`` and ``summary.json`` are written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import dataclasses
import json
import logging
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

from rtune_fashion import storage
from rtune_fashion.data import Dataset, load_fashion_mnist
from rtune_fashion.errors import ExperimentError, ExperimentInterrupted
from rtune_fashion.files import write_atomic
from rtune_fashion.progress import ProgressPrinter
from rtune_fashion.results import (
    OK_STATES,
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    ExperimentRecord,
    load_experiment,
    write_trials_csv,
)
from rtune_fashion.search import METRIC, MODE, SearchPlan, make_search
from rtune_fashion.spaces import SearchSpace, fingerprint, get_space
from rtune_fashion.spaces import validate as validate_search_space
from rtune_fashion.trainable import train_trial, trial_seed

TrialFunction = Callable[..., None]  # (config, *, data, max_epochs, seed) -> None, reports to Tune
BEST_MODEL_FILE = "best_model.keras"
# Settings a resumed experiment must keep: they define the search (resources, retries and paths may change).
RESUME_FIXED = ("space", "searcher", "scheduler", "num_samples", "max_epochs", "seed", "train_size", "val_size",
                "test_size")  # fmt: skip
SMOKE_SUBSET = {"train": 1000, "val": 500, "test": 500}
SMOKE_MAX_EPOCHS = 2
SMOKE_MAX_SAMPLES = 3
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
    num_samples: int | None = None  # None: 1 for the grid searcher (one pass over the grid), else 10
    max_epochs: int = 10
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    storage: str = "results"
    name: str | None = None
    seed: int = 0
    data_dir: str | None = None
    address: str | None = None
    train_size: int | None = None  # stratified subsets of the splits; None = the whole split
    val_size: int | None = None
    test_size: int | None = None
    smoke_test: bool = False
    resume: bool = False
    max_failures: int = 1
    retrain: bool = True
    time_budget_s: float | None = None  # stop every trial after this many seconds of search, then retrain

    def __post_init__(self) -> None:
        if self.num_samples is None:
            self.num_samples = 1 if self.searcher == "grid" else 10
        if self.smoke_test:
            self.train_size = min(self.train_size or SMOKE_SUBSET["train"], SMOKE_SUBSET["train"])
            self.val_size = min(self.val_size or SMOKE_SUBSET["val"], SMOKE_SUBSET["val"])
            self.test_size = min(self.test_size or SMOKE_SUBSET["test"], SMOKE_SUBSET["test"])
            self.max_epochs = min(self.max_epochs, SMOKE_MAX_EPOCHS)
            self.num_samples = min(self.num_samples, SMOKE_MAX_SAMPLES)
        if self.name is None:
            self.name = f"{self.space}_{self.searcher}" + ("_smoke" if self.smoke_test else "")

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
        positive_ints = {"num_samples": self.num_samples, "max_epochs": self.max_epochs}
        for name, value in positive_ints.items():
            if not isinstance(value, int) or value < 1:
                raise ExperimentError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}.")
        if not self.cpus_per_trial > 0:
            raise ExperimentError(f"--cpus-per-trial must be above 0, got {self.cpus_per_trial!r}.")
        if not self.gpus_per_trial >= 0:
            raise ExperimentError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial!r}.")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise ExperimentError(
                f"--gpus-per-trial {self.gpus_per_trial} is not possible: above 1 it must be a whole number "
                "of GPUs (fractions share one GPU)."
            )
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ExperimentError(f"--max-concurrent must be a positive integer, got {self.max_concurrent!r}.")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ExperimentError(f"--time-budget must be a positive number of seconds, got {self.time_budget_s!r}.")
        if self.max_failures < -1:
            raise ExperimentError(f"--max-failures must be -1 (retry forever) or more, got {self.max_failures}.")


# ---------------------------------------------------------------------------------------------------
# Small helpers


def _start_ray(address: str | None) -> bool:
    """Start or join Ray unless already connected; return whether this call started it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "runtime_env": WORKER_RUNTIME_ENV,
        "logging_level": logging.WARNING,
        "log_to_driver": True,
    }
    if address is None:
        kwargs["include_dashboard"] = False
    ray.init(address=address, **kwargs)
    return True


def _largest_node(resource: str) -> float:
    """The most of ``resource`` ("CPU", "GPU") that one live node of the Ray cluster has."""
    return max((node["Resources"].get(resource, 0) for node in ray.nodes() if node["Alive"]), default=0)


def _check_gpu_request(gpus_per_trial: float) -> None:
    if gpus_per_trial <= 0:
        return
    largest = _largest_node("GPU")
    if gpus_per_trial > largest:
        raise ExperimentError(
            f"--gpus-per-trial {gpus_per_trial} cannot be met: the largest node of this Ray cluster has "
            f"{largest:g} GPU(s), so trials would wait forever. Fix: lower --gpus-per-trial, or join a "
            "cluster with GPU nodes (--address)."
        )


# ---------------------------------------------------------------------------------------------------
# Results


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


# ---------------------------------------------------------------------------------------------------
# Retraining the best config (on a Ray worker, with the trial's resources)


def _retrain(config: dict[str, Any], data: Dataset, epochs: int, seed: int, cpus: float, gpus: float,
             schedule_epochs: int) -> dict:  # fmt: skip
    """Train ``config`` from scratch for ``epochs`` (a learning-rate schedule spans ``schedule_epochs``, as in
    the search), then evaluate it once on val and test; the metrics and the saved model's bytes."""
    from rtune_fashion import devices
    from rtune_fashion.retrain import train_and_test

    devices.configure(cpus, gpus)
    model, outcome = train_and_test(config, data, epochs=epochs, seed=seed, schedule_epochs=schedule_epochs)
    with tempfile.TemporaryDirectory() as directory:
        model.save(Path(directory) / BEST_MODEL_FILE)
        outcome["model_bytes"] = (Path(directory) / BEST_MODEL_FILE).read_bytes()
    return outcome


# ---------------------------------------------------------------------------------------------------
# The experiment


def prepare(settings: ExperimentSettings) -> tuple[SearchSpace, SearchPlan]:
    """Every check that needs no Ray and no data: settings, space, searcher pairing."""
    settings.check()
    space = get_space(settings.space)
    validate_search_space(space)
    plan = make_search(settings.searcher, settings.scheduler, space, max_epochs=settings.max_epochs,
                       seed=settings.seed, max_concurrent=settings.max_concurrent)  # fmt: skip
    return space, plan


def _check_experiment_dir(settings: ExperimentSettings, trainable: TrialFunction, options: dict[str, Any]) -> None:
    """Refuse --resume without an experiment, and a new run over an existing one (nothing is touched)."""
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
    if settings.resume:
        stored = _read_stored(storage.local_copy(settings.experiment_uri))
        _check_same_search(settings, stored, trainable)
        if stored.get("trainable_options", {}) != options:
            raise ExperimentError(
                f"Cannot resume {settings.experiment_uri} with trainable options {options}: it was started with "
                f"{stored.get('trainable_options', {})}. Fix: resume with the same options (for example --folds)."
            )


def _publish(settings: ExperimentSettings, *names: str) -> None:
    """Copy rtune's files next to Tune's when the storage is a URI (a path needs nothing)."""
    if storage.is_uri(settings.storage):
        storage.upload(settings.experiment_dir, settings.experiment_uri, names)


def _check_cluster_storage(settings: ExperimentSettings, echo: Callable[[str], None]) -> None:
    hosts = len({node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]})
    warning = storage.check_shared(settings.storage, hosts)
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


def _check_same_search(settings: ExperimentSettings, stored: dict[str, Any], trainable: TrialFunction) -> None:
    """Refuse to resume with settings, a space definition or a trainable that differ from the experiment's."""
    before = stored["settings"]
    changed = [f"{key}: {before.get(key)!r} when started, {getattr(settings, key)!r} now"
               for key in RESUME_FIXED if before.get(key) != getattr(settings, key)]  # fmt: skip
    if changed:
        raise ExperimentError(
            f"Cannot resume {settings.experiment_uri} with a different search ({'; '.join(changed)}). "
            f"Fix: rtune resume {settings.experiment_uri} (it reuses the stored settings), or start a new "
            "experiment with another --name."
        )
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


def _interrupted(results: tune.ResultGrid, settings: ExperimentSettings, space: SearchSpace,
                 fit_time: float) -> bool:  # fmt: skip
    """Whether Tune returned early (Ctrl+C / SIGTERM): trials left unfinished, or fewer than asked for.

    A search whose ``Tuner.fit`` lasted its ``--time-budget`` ended as asked, whatever it left unfinished
    (Tune's clock starts inside ``fit``, so the fit cannot be shorter than the budget when it ran out).
    """
    if settings.time_budget_s is not None and fit_time >= settings.time_budget_s:
        return False
    unfinished = len(results) - results.num_terminated - results.num_errors
    too_few = not space.is_grid and len(results) < int(settings.num_samples or 0)
    return unfinished > 0 or too_few


def _make_tuner(
    settings: ExperimentSettings,
    space: SearchSpace,
    plan: SearchPlan,
    data: Dataset,
    trial_fn: TrialFunction,
    echo: Callable[[str], None],
    options: dict[str, Any],
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
    return tune.Tuner(
        trainable,
        param_space=space.params,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=plan.search_alg,
            scheduler=plan.scheduler,
            num_samples=settings.num_samples,
            max_concurrent_trials=concurrency,
            time_budget_s=settings.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.storage_root,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # forces a state snapshot per checkpoint
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,  # Tune's tables are too wide to read; ProgressPrinter prints short lines instead
            callbacks=[ProgressPrinter(echo, settings.max_epochs)],
        ),
    )


def _retrain_best(settings: ExperimentSettings, best: dict[str, Any], data: Dataset) -> dict[str, Any]:
    """Retrain on a Ray worker (a GPU node on a cluster) and save the model here.

    It runs alone after the search, so a CPU-only retraining takes every CPU of the largest node rather
    than one trial's share; with GPUs it takes one trial's resources.
    """
    cpus = settings.cpus_per_trial
    if settings.gpus_per_trial == 0:
        cpus = max(cpus, _largest_node("CPU"))
    retrain = ray.remote(_retrain).options(num_cpus=cpus, num_gpus=settings.gpus_per_trial)
    seed = trial_seed(settings.seed, best["raw_config"])  # the winning trial's own seed
    outcome = ray.get(retrain.remote(best["raw_config"], data, best["epochs"], seed, cpus, settings.gpus_per_trial,
                                     settings.max_epochs))  # fmt: skip
    write_atomic(settings.experiment_dir / BEST_MODEL_FILE, outcome.pop("model_bytes"))
    return outcome


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
    (it travels to the trials through the object store); the best config is retrained and tested only
    when it is an image :class:`Dataset` with a test split. ``trainable_options`` are passed to every
    trial as keyword arguments (stored in settings.json).

    Raises:
        RtuneError (a subclass of it): bad settings, space, searcher pairing, data, storage or resources
            (before Ray starts where possible), or a search in which every trial failed.
    """
    started = time.time()
    space, plan = prepare(settings)
    _check_experiment_dir(settings, trainable, trainable_options or {})
    if data is None:
        data = load_fashion_mnist(settings.data_dir, subset=settings.subset(), subset_seed=settings.seed)
    experiment_dir = settings.experiment_dir

    # Save Tune's experiment state (what --resume restores) at most every second instead of Ray's
    # adaptive default, so an interrupted search loses at most a second of bookkeeping.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # else Tune prints its own header even at verbose=0
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # snapshots are wanted
    started_ray = _start_ray(settings.address)
    try:
        _check_gpu_request(settings.gpus_per_trial)
        _check_cluster_storage(settings, echo)
        experiment_dir.mkdir(parents=True, exist_ok=True)
        if not settings.resume:
            stored = {
                "started_at": started,
                "settings": dataclasses.asdict(settings),
                "space_fingerprint": fingerprint(space),
                "trainable": _qualified_name(trainable),
                "trainable_options": trainable_options or {},
            }
            write_atomic(experiment_dir / SETTINGS_FILE, json.dumps(stored, indent=2))
            _publish(settings, SETTINGS_FILE)
        echo(f"{'Resuming' if settings.resume else 'Searching'} {space.name} with {plan.searcher} + "
             f"{plan.scheduler_name}: {settings.num_samples} trials of up to {settings.max_epochs} epochs, "
             f"{settings.cpus_per_trial:g} CPU and {settings.gpus_per_trial:g} GPU per trial.")
        echo(f"Watch it: tensorboard --logdir {settings.experiment_uri}   |   rtune report {settings.experiment_uri}")
        tuner = _make_tuner(settings, space, plan, data, trainable, echo, trainable_options or {})
        fit_started = time.time()
        results = tuner.fit()
        search_time = time.time() - started
        interrupted = _interrupted(results, settings, space, time.time() - fit_started)
        record = load_experiment(storage.local_copy(settings.experiment_uri), search_done=not interrupted)
        write_trials_csv(record)
        _publish(settings, TRIALS_FILE)
        if interrupted:
            raise ExperimentInterrupted(settings.experiment_uri)
        summary = _summarise(settings, space, plan.scheduler_name, record, search_time)
        if settings.retrain and summary["best"] is not None and isinstance(data, Dataset) and len(data.y_test):
            summary["retrained"] = _retrain_best(settings, summary["best"], data)
        summary["wall_time_s"] = time.time() - started
        write_atomic(experiment_dir / SUMMARY_FILE, json.dumps(summary, indent=2, default=str))
        _publish(settings, SUMMARY_FILE, BEST_MODEL_FILE)
        return summary
    finally:
        if started_ray:
            ray.shutdown()


def _summarise(
    settings: ExperimentSettings,
    space: SearchSpace,
    scheduler: str,
    record: ExperimentRecord,
    search_time: float,
) -> dict[str, Any]:
    trial = record.best()
    best = None
    if trial is not None:
        best = {
            "trial_id": trial.trial_id,
            "val_accuracy": trial.best_val_accuracy,  # the best epoch's: biased upwards by the max
            "last_val_accuracy": trial.last_val_accuracy,
            "epochs": trial.epochs,
            "config": trial.effective_config,
            "raw_config": trial.config,
        }
    elif record.trials:
        errors = "; ".join(sorted({t.error for t in record.trials if t.error}))[:1000]
        raise ExperimentError(
            f"Every trial of {settings.name} failed, so there is no best model. Errors: {errors}. "
            f"Details: the error.txt files under {settings.experiment_uri}."
        )
    counts = record.counts()
    return {
        "name": settings.name,
        "experiment_dir": settings.experiment_uri,
        "space": space.name,
        "searcher": settings.searcher,
        "scheduler": scheduler,
        "metric": METRIC,
        "best": best,
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
        "settings": dataclasses.asdict(settings),
        "versions": _versions(),
    }


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
    stored = dict(_read_stored(directory)["settings"])
    stored.update(storage=parent, name=name, resume=True)
    return ExperimentSettings(**stored)

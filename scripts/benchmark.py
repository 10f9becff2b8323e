"""rtune_fashion against what users do today, measured side by side on one machine, in one run.

    .venv/bin/python scripts/benchmark.py --mode quick            # a few minutes
    .venv/bin/python scripts/benchmark.py --mode full             # about half an hour on 2 cores
    .venv/bin/python scripts/benchmark.py --sections gpu          # on a machine with a GPU (KERAS_BACKEND=jax)

Sections (``--sections``, default: all but gpu, which runs only when asked):

* ``time_to_target``: space A (``mlp_hyperas``) searched by hyperopt + ASHA and by BOHB (all of a HyperBand
  band's brackets, and one bracket) through Ray Tune,
  against a sequential loop that trains every trial for its full epochs with hyperopt TPE in one fresh
  process (what Hyperas does). Same trial budget, seeds and data; wall time from the start of each method (Ray's
  start included) until a trial first reaches each target validation accuracy.
* ``conditions``: space A searched by hyperopt, Optuna and BOHB each given the space's conditions in its own
  form, against the same searcher drawing every key every time (``flat_space``); time to the targets.
* ``overhead``: the same short trainings (the ``mlp_grid`` configs, same seeds) through Ray Tune with the
  same CPUs as a plain Python loop (in a fresh process), one at a time, and through Ray Tune two at a time.
* ``data_path``: per-trial data setup in a Ray worker: the dataset from the object store (what every
  rtune trial does) against reading and parsing the idx files again (what Hyperas' ``data()`` does).
* ``gpu``: 1, 2, 4, 8 trials of one CNN sharing a GPU (aggregate epochs per second), first epoch against
  steady epochs, with a cold and a warm compilation cache.
* ``keras_tuner``: article E's MLP space searched by the real Keras Tuner (``BayesianOptimization``) and by
  rtune (Optuna + ASHA, what ``experiments/mlp_optuna.py`` runs), at each ``--batch-sizes``; time to the
  targets. Needs ``keras-tuner`` (in the ``test`` extra); runs only when asked.

Each section's repeats alternate the order of the methods; tables give medians. Results go to a JSON file
(``--json``) and to the section's table in ``docs/benchmarks.md`` (``--doc``; other sections are kept).
``--in-one-process`` runs every method in this process on one Ray for the whole run: the test suite's check
that the script works; its times leave the start-ups out and are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtune_fashion.quiet import import_keras  # noqa: E402

import_keras()  # without TensorFlow's start-up lines

import keras  # noqa: E402
import numpy as np  # noqa: E402
import ray  # noqa: E402

from rtune_fashion import config as cfg  # noqa: E402
from rtune_fashion.data import Dataset, load_fashion_mnist  # noqa: E402
from rtune_fashion.devices import cpu_description  # noqa: E402
from rtune_fashion.experiment import ExperimentSettings, run_experiment, start_ray  # noqa: E402
from rtune_fashion.files import replace_section  # noqa: E402
from rtune_fashion.models import build_model  # noqa: E402
from rtune_fashion.report import anytime_curve  # noqa: E402
from rtune_fashion.results import load_experiment  # noqa: E402
from rtune_fashion.spaces import get_space  # noqa: E402
from rtune_fashion.trainable import trial_seed  # noqa: E402
from rtune_fashion.training import fit_epochs  # noqa: E402

SECTIONS = ("time_to_target", "conditions", "overhead", "data_path", "gpu", "keras_tuner")
DEFAULT_SECTIONS = ("time_to_target", "overhead", "data_path")
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Mode:
    """The budget of each section in one mode."""

    repeats: int
    train_size: int
    val_size: int
    search_trials: int
    search_epochs: int
    condition_trials: int
    targets: tuple[float, ...]
    overhead_epochs: int
    data_repeats: int
    gpu_epochs: int


MODES = {
    "quick": Mode(repeats=2, train_size=4000, val_size=2000, search_trials=8, search_epochs=4,
                  condition_trials=30, targets=(0.78, 0.82),
                  overhead_epochs=2, data_repeats=3, gpu_epochs=4),
    "full": Mode(repeats=3, train_size=12000, val_size=6000, search_trials=20, search_epochs=10,
                 condition_trials=40, targets=(0.84, 0.86), overhead_epochs=3, data_repeats=5, gpu_epochs=12),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Shared helpers


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_s(seconds: float | None) -> str:
    return "not reached" if seconds is None or not np.isfinite(seconds) else f"{seconds:.1f} s"


def machine() -> str:
    return (f"{cpu_description()}, Python {platform.python_version()}, Ray {ray.__version__}, "
            f"Keras {keras.__version__} on {keras.backend.backend()}")  # fmt: skip


def train_in_process(config: dict[str, Any], data: Dataset, epochs: int, seed: int,
                     on_epoch: Callable[[int, dict[str, float], Any], None] | None = None) -> list[dict[str, float]]:
    """One trial the way a plain loop does it: in this process, all CPUs, the trial's own seed."""
    config = cfg.validate(config)
    keras.backend.clear_session()
    keras.utils.set_random_seed(trial_seed(seed, config))
    model = build_model(config, data.input_shape, data.num_classes)
    return fit_epochs(model, config, data, start_epoch=0, end_epoch=epochs, on_epoch=on_epoch)  # fmt: skip


def in_fresh_process(isolated: bool, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a new Python process, as a user's own script would run it: nothing left over from
    the benchmark's earlier sections (models, traced functions, thread pools) can slow it down or speed it up.
    In this process when not ``isolated`` (``--in-one-process``)."""
    if not isolated:
        return function(*args)
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def run_tune(data: Dataset, storage: Path, name: str, **settings: Any) -> tuple[float, Path]:
    """One rtune experiment (no retraining); (wall seconds of the whole call, Ray's start included, its dir). On the
    CPUs unless ``settings`` gives ``gpus_per_trial`` (the GPU section): the other sections compare CPU runs."""
    settings = {"gpus_per_trial": 0.0, **settings}
    experiment = ExperimentSettings(storage=str(storage), name=name, retrain=False, **settings)
    started = time.perf_counter()
    run_experiment(experiment, echo=lambda line: None, data=data)
    return time.perf_counter() - started, experiment.experiment_dir


def ordered(methods: Sequence[str], repeat: int) -> list[str]:
    """The methods in a rotated order per repeat, so no method always runs first (cold caches, noisy neighbours)."""
    shift = repeat % len(methods)
    return [*methods[shift:], *methods[:shift]]


# ---------------------------------------------------------------------------------------------------
# 1. Time to a target accuracy


def sequential_hyperopt(data: Dataset, trials: int, epochs: int, seed: int) -> tuple[float, list[tuple[float, float]]]:
    """Hyperas' way: hyperopt TPE in this process, every trial trained for all its epochs.

    Returns (wall seconds, [(seconds since start, val accuracy) per epoch])."""
    import hyperopt
    from ray.tune.search.hyperopt import HyperOptSearch

    space = HyperOptSearch.convert_search_space(get_space("mlp_hyperas").params)
    started = time.perf_counter()
    events: list[tuple[float, float]] = []

    def objective(config: dict[str, Any]) -> dict[str, Any]:
        def record(epoch: int, metrics: dict[str, float], model: Any) -> None:
            events.append((time.perf_counter() - started, metrics["val_accuracy"]))

        try:
            history = train_in_process(config, data, epochs, seed, on_epoch=record)
        except Exception as error:  # noqa: BLE001 - a diverged trial is a failed evaluation, as in Hyperas
            return {"status": hyperopt.STATUS_FAIL, "error": str(error)}
        return {"loss": -max(h["val_accuracy"] for h in history), "status": hyperopt.STATUS_OK}

    hyperopt.fmin(objective, space, algo=hyperopt.tpe.suggest, max_evals=trials, trials=hyperopt.Trials(),
                  rstate=np.random.default_rng(seed), show_progressbar=False)  # fmt: skip
    return time.perf_counter() - started, events


def first_reaching(events: Sequence[tuple[float, float]], target: float) -> float | None:
    best = -1.0
    for seconds, value in sorted(events):
        best = max(best, value)
        if best >= target:
            return seconds
    return None


def record_run(method: str, repeat: int, seed: int, wall: float, events: Sequence[tuple[float, float]],
               targets: Sequence[float], epochs: int | None = None) -> dict[str, Any]:  # fmt: skip
    """One run's line of a time-to-target table (printed as it ends): its seconds to each target, best val accuracy
    and epochs trained (``epochs`` None: one per event, as Tune reports them)."""
    reached = {str(t): first_reaching(events, t) for t in targets}
    best = max((v for _, v in events), default=float("nan"))
    epochs = len(events) if epochs is None else epochs
    print(f"  {method} (seed {seed}): {wall:.1f} s, {epochs} epochs, best {best:.4f}, "
          + ", ".join(f">= {t}: {fmt_s(s)}" for t, s in reached.items()), flush=True)
    return {"method": method, "repeat": repeat, "seed": seed, "wall_s": wall, "epochs": epochs,
            "best_val_accuracy": best, "seconds_to_target": reached}  # fmt: skip


def tune_events(experiment_dir: Path, call_started: float) -> list[tuple[float, float]]:
    """(seconds since the run_experiment call, best val accuracy so far) for every reported epoch."""
    record = load_experiment(experiment_dir)
    curve = anytime_curve(record)
    offset = (record.start_time() or call_started) - call_started  # the curve counts from the run's start
    return [(seconds + offset, best) for seconds, best in zip(curve.seconds, curve.best, strict=True)]


# Each method's rtune settings (None: the sequential loop). BOHB twice: HyperBand's whole band of brackets
# (Ray's and the paper's default) and one bracket (successive halving from the first rung: 1 -> 3 -> 9
# epochs at 10, so none of its trials trains the 10th).
TIME_TO_TARGET_METHODS: dict[str, dict[str, Any] | None] = {
    "sequential hyperopt (Hyperas' way)": None,
    "rtune hyperopt + ASHA": {"searcher": "hyperopt"},
    "rtune BOHB": {"searcher": "bohb"},
    "rtune BOHB, 1 bracket": {"searcher": "bohb", "brackets": 1},
}


def bench_time_to_target(mode: Mode, args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    methods = tuple(m for m in TIME_TO_TARGET_METHODS if m in args.methods)  # the table's order; first = baseline
    runs: list[dict[str, Any]] = []
    storage = Path(tempfile.mkdtemp(prefix="bench_ttt_"))
    for repeat in range(mode.repeats):
        seed = args.seed + repeat
        for method in ordered(methods, repeat):
            if TIME_TO_TARGET_METHODS[method] is None:
                wall, events = in_fresh_process(args.isolated, sequential_hyperopt, data, mode.search_trials,
                                                mode.search_epochs, seed)  # fmt: skip
                epochs = mode.search_trials * mode.search_epochs
            else:
                tune_settings = TIME_TO_TARGET_METHODS[method]
                call_started = time.time()
                wall, directory = run_tune(data, storage, f"{len(runs)}_{repeat}", space="mlp_hyperas",
                                           num_samples=mode.search_trials, max_epochs=mode.search_epochs,
                                           seed=seed, **tune_settings)  # fmt: skip
                events = tune_events(directory, call_started)
                epochs = len(events)
            runs.append(record_run(method, repeat, seed, wall, events, mode.targets, epochs=epochs))
    return {"runs": runs, "methods": methods, "targets": mode.targets}


def _median_to_target(runs: list[dict[str, Any]], method: str, target: float) -> tuple[float | None, int, int]:
    """Median seconds to ``target`` over the repeats (an unreached target counts as the whole run: a lower
    bound, marked), how many repeats reached it, and how many ran."""
    mine = [r for r in runs if r["method"] == method]
    reached = [r["seconds_to_target"][str(target)] for r in mine]
    values = [s if s is not None else r["wall_s"] for s, r in zip(reached, mine, strict=True)]
    hits = sum(s is not None for s in reached)
    return (median(values) if hits * 2 > len(mine) else None), hits, len(mine)


def time_to_target_rows(runs: list[dict[str, Any]], methods: Sequence[str], targets: Sequence[float],
                        baseline_of: Callable[[str], str], repeats: int) -> list[str]:  # fmt: skip
    """The table of medians (with each method's speed-up over its baseline) and each repeat's ratio."""
    head = "| method | wall time | epochs trained | best val accuracy | " + " | ".join(
        f">= {t} (reached / runs) | speed-up" for t in targets) + " |"
    lines = [head, "|" + " --- |" * (4 + 2 * len(targets))]
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        cells = [method, f"{median([r['wall_s'] for r in mine]):.1f} s", f"{median([r['epochs'] for r in mine]):.0f}",
                 f"{median([r['best_val_accuracy'] for r in mine]):.4f}"]  # fmt: skip
        for target in targets:
            seconds, hits, total = _median_to_target(runs, method, target)
            base, _, _ = _median_to_target(runs, baseline_of(method), target)
            same = baseline_of(method) == method
            speedup = "-" if same or seconds is None or base is None else f"{base / seconds:.1f}x"
            cells += [f"{fmt_s(seconds)} ({hits}/{total})", speedup]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Ratio of each repeat (baseline time / this method's time, same seed, same run):", ""]
    for method in (m for m in methods if baseline_of(m) != m):
        for target in targets:
            ratios = []
            for repeat in range(repeats):
                base = next(r for r in runs if r["method"] == baseline_of(method) and r["repeat"] == repeat)
                mine = next(r for r in runs if r["method"] == method and r["repeat"] == repeat)
                b, m = base["seconds_to_target"][str(target)], mine["seconds_to_target"][str(target)]
                ratios.append("n/a" if b is None or m is None else f"{b / m:.1f}x")
            lines.append(f"- {method} against {baseline_of(method)}, >= {target}: " + ", ".join(ratios))
    return lines


def table_time_to_target(result: dict[str, Any], mode: Mode, command: str) -> str:
    runs, methods, targets = result["runs"], result["methods"], result["targets"]
    rows = time_to_target_rows(runs, methods, targets, lambda _: methods[0], mode.repeats)
    return "\n".join([
        f"Space A (`mlp_hyperas`), {mode.search_trials} trials of up to {mode.search_epochs} epochs each method, "
        f"{mode.train_size} training / {mode.val_size} validation images, {mode.repeats} repeats (seeds "
        f"{seeds_of(runs)}); medians. Times count from the start of each method (Ray's start included) to the "
        "first epoch of any trial at or above the target. A repeat that never reaches a target counts as its "
        "whole wall time (a lower bound); a target not reached in a majority of repeats is 'not reached'.", "",
        *rows, "", f"Command: `{command}`"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# 1b. Conditional spaces against flat ones

CONDITION_SEARCHERS = ("hyperopt", "optuna", "bohb")


def condition_method(searcher: str, flat: bool) -> str:
    return f"{searcher}, {'flat' if flat else 'conditional'} space"


def bench_conditions(mode: Mode, args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    """Space A searched by each searcher given its conditions (rtune_fashion.native) and flat (``flat_space``:
    every key every time), same seeds and trials; the flat form is each one's baseline."""
    methods = [condition_method(s, flat) for s in CONDITION_SEARCHERS if s in args.condition_searchers
               for flat in (True, False)]  # fmt: skip
    runs: list[dict[str, Any]] = []
    storage = Path(tempfile.mkdtemp(prefix="bench_conditions_"))
    for repeat in range(mode.repeats):
        seed = args.seed + repeat
        for method in ordered(methods, repeat):
            searcher = method.split(",")[0]
            call_started = time.time()
            wall, directory = run_tune(data, storage, f"{len(runs)}_{repeat}", space="mlp_hyperas", searcher=searcher,
                                       flat_space=method.endswith("flat space"), num_samples=mode.condition_trials,
                                       max_epochs=mode.search_epochs, seed=seed)  # fmt: skip
            runs.append(record_run(method, repeat, seed, wall, tune_events(directory, call_started), mode.targets))
    return {"runs": runs, "methods": methods, "targets": mode.targets}


def table_conditions(result: dict[str, Any], mode: Mode, command: str) -> str:
    runs, methods, targets = result["runs"], result["methods"], result["targets"]
    rows = time_to_target_rows(runs, methods, targets, lambda m: m.replace("conditional", "flat"), mode.repeats)
    return "\n".join([
        f"Space A (`mlp_hyperas`: a third layer's units, activation and dropout only at depth 3, each optimizer's "
        f"learning rate only under it), {mode.condition_trials} trials of up to {mode.search_epochs} epochs each "
        f"method (ASHA; BOHB's own bands), {mode.train_size} training / {mode.val_size} validation images, "
        f"{mode.repeats} repeats (seeds {seeds_of(runs)}); medians. 'Conditional': each searcher is given the space's "
        "conditions in its own form (nested hp.choice, Optuna define-by-run, ConfigSpace InConditions); 'flat': the "
        "same searcher draws every key every time (`flat_space`), as before. hyperopt's first 20 trials and "
        "Optuna's first 10 are random in both forms. Times count from the start of each run (Ray's start included); "
        "a repeat that never reaches a target counts as its whole wall time; a target not reached in a majority "
        "of repeats is 'not reached'.", "",
        *rows, "", f"Command: `{command}`"])  # fmt: skip


def seeds_of(runs: list[dict[str, Any]]) -> str:
    return ", ".join(str(s) for s in sorted({r["seed"] for r in runs}))


# ---------------------------------------------------------------------------------------------------
# 2. Framework overhead


def grid_configs(space_name: str) -> list[dict[str, Any]]:
    """Every config of a grid space, in Tune's order."""
    from ray.tune.search.variant_generator import generate_variants

    return [config for _, config in generate_variants(get_space(space_name).params)]


def plain_loop(configs: list[dict[str, Any]], data: Dataset, epochs: int, seed: int) -> float:
    """Seconds to train every config in turn, in this process (the data is already in memory)."""
    started = time.perf_counter()
    for config in configs:
        train_in_process(config, data, epochs, seed)
    return time.perf_counter() - started


def bench_overhead(mode: Mode, args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    cpus = float(os.cpu_count() or 1)
    configs = grid_configs("mlp_grid")
    methods = ("plain loop, one at a time", "Ray Tune, one at a time", "Ray Tune, parallel (1 CPU per trial)")
    runs: list[dict[str, Any]] = []
    storage = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    for repeat in range(mode.repeats):
        for method in ordered(methods, repeat):
            if method.startswith("plain"):
                wall = in_fresh_process(args.isolated, plain_loop, configs, data, mode.overhead_epochs, args.seed)
                run = {"wall_s": wall}
            else:
                one = "one at a time" in method
                call_started = time.time()
                wall, directory = run_tune(data, storage, f"grid_{'seq' if one else 'par'}_{repeat}",
                                           space="mlp_grid", searcher="grid", max_epochs=mode.overhead_epochs,
                                           seed=args.seed, cpus_per_trial=cpus if one else 1.0,
                                           max_concurrent=1 if one else None)  # fmt: skip
                rows = [row for t in load_experiment(directory).trials for row in t.history]
                first_epoch_start = min(row["reported_at"] - row["epoch_time_s"] for row in rows)
                run = {"wall_s": wall,
                       "start_s": first_epoch_start - call_started,  # Ray's start, the worker's, the first build
                       "end_s": call_started + wall - max(row["reported_at"] for row in rows)}  # files, shutdown
            runs.append({"method": method, "repeat": repeat, **run})
            print(f"  {method}: {wall:.1f} s", flush=True)
    return {"runs": runs, "methods": methods, "trials": len(configs), "cpus": cpus}


def table_overhead(result: dict[str, Any], mode: Mode, command: str) -> str:
    runs, methods = result["runs"], result["methods"]
    base = median([r["wall_s"] for r in runs if r["method"] == methods[0]])
    lines = ["| method | wall time (median) | all runs | vs plain loop | call start to first epoch | last epoch to "
             "return | vs plain loop without these two |", "|" + " --- |" * 7]
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        walls = [r["wall_s"] for r in mine]
        cells = [method, f"{median(walls):.1f} s", ", ".join(f"{w:.1f}" for w in walls), "-", "-", "-", "-"]
        if method != methods[0]:
            start, end = median([r["start_s"] for r in mine]), median([r["end_s"] for r in mine])
            cells[3:] = [f"{median(walls) / base - 1:+.0%}", f"{start:.1f} s", f"{end:.1f} s",
                         f"{(median(walls) - start - end) / base - 1:+.0%}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    paired = []
    for repeat in range(mode.repeats):
        loop = next(r["wall_s"] for r in runs if r["method"] == methods[0] and r["repeat"] == repeat)
        tune_one = next(r["wall_s"] for r in runs if r["method"] == methods[1] and r["repeat"] == repeat)
        paired.append(tune_one / loop - 1)
    return "\n".join([
        f"The {result['trials']} configs of `mlp_grid` (2 x 256-unit MLP, 4 optimizers x 3 learning rates), "
        f"{mode.overhead_epochs} epochs each on {mode.train_size} training / {mode.val_size} validation images, "
        f"same seeds; {mode.repeats} repeats, order rotated. 'One at a time' gives the trial all "
        f"{result['cpus']:g} CPUs, as the loop has; Tune's time is the whole `run_experiment` call: Ray's start "
        "and shutdown, a checkpoint per epoch, rtune's result files. The last column leaves out the once-per-run "
        "costs (Ray's start and the first worker's Keras import before the first epoch; the result files and "
        "Ray's shutdown after the last); the loop's own first build is not subtracted.",
        "", *lines, "",
        "Overhead of each repeat (Tune one at a time / loop - 1): " + ", ".join(f"{p:+.0%}" for p in paired),
        "", f"Command: `{command}`"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# 3. Data path


def _read_idx_like_hyperas(directory: str) -> tuple[np.ndarray, ...]:
    """What Hyperas' ``data()`` does: read and decompress the four files and scale the images (no checksum)."""
    import gzip

    def read(name: str, offset: int) -> np.ndarray:
        path = Path(directory) / f"{name}.gz"
        raw = gzip.decompress(path.read_bytes()) if path.exists() else (Path(directory) / name).read_bytes()
        return np.frombuffer(raw, np.uint8, offset=offset)

    x = read("train-images-idx3-ubyte", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    y = read("train-labels-idx1-ubyte", 8)
    x_test = read("t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    y_test = read("t10k-labels-idx1-ubyte", 8)
    return x, y, x_test, y_test


DATA_METHODS = {
    "object store (rtune trials)": "object_store",
    "re-read, Hyperas-style parsing": "hyperas",
    "re-read, rtune's verified loader": "rtune_loader",
}


@ray.remote(num_cpus=1)
def _timed_setup(how: str, source: Any) -> float:
    """Seconds this worker takes to have the dataset in memory: ``source`` is [object ref] or a directory."""
    started = time.perf_counter()
    if how == "object_store":
        data = ray.get(source[0])  # what tune.with_parameters does at a trial's start
        _ = float(data.x_train[0, 0, 0, 0]) + float(data.x_val[-1, -1, -1, -1])
    elif how == "rtune_loader":
        load_fashion_mnist(source)
    else:
        _read_idx_like_hyperas(source)
    return time.perf_counter() - started


def bench_data_path(mode: Mode, args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    from rtune_fashion.data import find_data_dir

    directory = str(find_data_dir(args.data_dir))
    full = load_fashion_mnist(args.data_dir)
    methods = tuple(DATA_METHODS)
    own_ray = not ray.is_initialized()  # --in-one-process: the run's Ray
    if own_ray:
        ray.init(address="local", include_dashboard=False, logging_level="WARNING", num_cpus=1)  # never a cluster
    try:
        ref = ray.put(full)
        ray.get(_timed_setup.remote("object_store", [ref]))  # starts the worker: not counted
        runs: list[dict[str, Any]] = []
        for repeat in range(mode.data_repeats):
            for method in ordered(methods, repeat):
                how = DATA_METHODS[method]
                seconds = ray.get(_timed_setup.remote(how, [ref] if how == "object_store" else directory))
                runs.append({"method": method, "repeat": repeat, "seconds": seconds})
    finally:
        if own_ray:
            ray.shutdown()
    megabytes = sum(a.nbytes for a in (full.x_train, full.x_val, full.x_test)) / 2**20
    return {"runs": runs, "methods": methods, "megabytes": megabytes}


def table_data_path(result: dict[str, Any], mode: Mode, command: str) -> str:
    runs, methods = result["runs"], result["methods"]
    base = median([r["seconds"] for r in runs if r["method"] == methods[0]])
    lines = ["| per-trial data setup | median | all runs | vs object store |", "| --- | --- | --- | --- |"]
    for method in methods:
        values = [r["seconds"] for r in runs if r["method"] == method]
        ratio = "-" if method == methods[0] else f"{median(values) / base:.0f}x"
        lines.append(f"| {method} | {median(values) * 1000:.1f} ms | "
                     f"{', '.join(f'{v * 1000:.1f}' for v in values)} ms | {ratio} |")  # fmt: skip
    return "\n".join([
        f"The whole dataset ({result['megabytes']:.0f} MiB as float32: 48,000 train, 12,000 validation, 10,000 "
        f"test images) set up in a Ray worker, {mode.data_repeats} times each, order rotated; timed inside the "
        "worker.", "", *lines, "", f"Command: `{command}`"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# 4. GPU packing and first-epoch time


def bench_gpu(mode: Mode, args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    from rtune_fashion.spaces import SearchSpace, register_space

    config = cfg.validate({"model": "cnn", **_gpu_config()})
    register_space(SearchSpace(name="bench_gpu_cnn", source="benchmark", description="one fixed CNN", params=config))
    runs: list[dict[str, Any]] = []
    storage = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    # The first run fills the shared cache that the "warm" runs then read; the last starts from an empty one,
    # as a search of new architectures does.
    plan = [(1, "cold", "shared"), (1, "warm", "shared"), (2, "warm", "shared"), (4, "warm", "shared"),
            (8, "warm", "shared"), (8, "cold", "fresh")]  # fmt: skip
    for packed, cache, cache_name in plan:
        # Each run starts its own local Ray (not so with --in-one-process), whose workers inherit this environment.
        os.environ["RTUNE_CACHE_DIR"] = str(storage / f"cache_{cache_name}")
        wall, directory = run_tune(data, storage, f"gpu_{packed}_{cache}", space="bench_gpu_cnn", searcher="random",
                                   scheduler="fifo", num_samples=packed, max_epochs=mode.gpu_epochs, seed=args.seed,
                                   cpus_per_trial=args.gpu_cpus_per_trial, gpus_per_trial=1 / packed)  # fmt: skip
        histories = [t.history for t in load_experiment(directory).trials if t.history]
        runs.append({"trials": packed, "cache": cache, "wall_s": wall, **epoch_timing(histories)})
        print(f"  {packed} trial(s) per GPU, {cache} cache: {runs[-1]}", flush=True)
    import jax

    return {"runs": runs, "config": config, "device": str(jax.devices()[0].device_kind)}


def epoch_timing(histories: list[list[dict[str, Any]]]) -> dict[str, float]:
    """First and steady epoch times of trials that ran side by side, and their aggregate throughput.

    Aggregate steady throughput counts the epochs that ended while every trial was past its first epoch and
    none had finished (so all were training at once), per second of that window."""
    first = [h[0]["epoch_time_s"] for h in histories]
    steady = [row["epoch_time_s"] for h in histories for row in h[1:]]
    ends = sorted(row["reported_at"] for h in histories for row in h)
    window_start = max(h[0]["reported_at"] for h in histories)
    window_end = min(h[-1]["reported_at"] for h in histories)
    inside = [t for t in ends if window_start < t <= window_end]
    span = max(ends) - min(h[0]["reported_at"] - h[0]["epoch_time_s"] for h in histories)
    return {"epochs": len(ends), "first_epoch_s": median(first), "steady_epoch_s": median(steady),
            "steady_epochs_per_s": len(inside) / (window_end - window_start) if len(inside) >= 2 else float("nan"),
            "overall_epochs_per_s": len(ends) / span, "span_s": span}  # fmt: skip


def _gpu_config() -> dict[str, Any]:
    """Article D's best CNN in rtune's terms (the cnn_wide warm-start point), batch 256 as in the article."""
    point = dict(get_space("cnn_wide").points_to_evaluate[0])
    point["batch_size"] = 256
    return point


def table_gpu(result: dict[str, Any], mode: Mode, command: str) -> str:
    runs = result["runs"]
    one = next(r for r in runs if r["trials"] == 1 and r["cache"] == "warm")
    lines = ["| trials per GPU | compilation cache | first epoch (median) | steady epoch (median) | first / steady | "
             "aggregate steady epochs/s | vs 1 trial | epochs/s over the whole run |", "|" + " --- |" * 8]
    for r in runs:
        lines.append(f"| {r['trials']} | {r['cache']} | {r['first_epoch_s']:.1f} s | {r['steady_epoch_s']:.2f} s | "
                     f"{r['first_epoch_s'] / r['steady_epoch_s']:.1f}x | {r['steady_epochs_per_s']:.2f} | "
                     f"{r['steady_epochs_per_s'] / one['steady_epochs_per_s']:.1f}x | "
                     f"{r['overall_epochs_per_s']:.2f} |")  # fmt: skip
    return "\n".join([
        f"{result['device']}, Keras on JAX: article D's best CNN (batch 256, {mode.train_size} training / "
        f"{mode.val_size} validation images), {mode.gpu_epochs} epochs per trial, the GPU shared by 1-8 trials "
        "(`gpus_per_trial` = 1/n). 'cold': an empty compilation cache; 'warm': the cache of the runs before. "
        "Medians over the trials of each run; steady = epochs 2 and later. Aggregate steady epochs/s: epochs "
        "ended while all trials of the run were past their first epoch and none had finished, per second of "
        "that window; over the whole run: all epochs / (last epoch end - first trial start).", "", *lines, "",
        f"Command: `{command}`"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# 5. Against the real Keras Tuner


def article_e_config(hp: Any, batch_size: int) -> dict[str, Any]:
    """Article E's MLP space in Keras Tuner's own terms (``hp``), as an rtune config: the space
    ``mlp_kerastuner`` samples the same values (1-3 layers of 50-350 units step 50, dropout, SGD with
    Nesterov momentum 0.9 or Adam, learning rate)."""
    num_layers = hp.Int("num_layers", 1, 3)
    config = {"model": "mlp", "num_layers": num_layers, "dropout": hp.Choice("dropout", [0.0, 0.1, 0.2]),
              "optimizer": hp.Choice("optimizer", ["sgd", "adam"]), "momentum": 0.9, "nesterov": True,
              "learning_rate": hp.Choice("learning_rate", [0.1, 0.01, 0.001]), "batch_size": batch_size}  # fmt: skip
    for layer in range(1, num_layers + 1):
        config[f"units_{layer}"] = hp.Int(f"units_{layer}", 50, 350, step=50)
    return config


def keras_tuner_search(data: Dataset, trials: int, epochs: int, batch_size: int,
                       seed: int) -> tuple[float, list[tuple[float, float]]]:  # fmt: skip
    """Keras Tuner as its users run it: ``BayesianOptimization`` over article E's space, every trial trained
    for all its epochs in this process, the model from the same builder as rtune's trials.

    Returns (wall seconds, [(seconds since start, val accuracy) per epoch])."""
    import keras_tuner

    started = time.perf_counter()
    events: list[tuple[float, float]] = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            events.append((time.perf_counter() - started, float((logs or {})["val_accuracy"])))

    def build(hp: Any) -> keras.Model:
        return build_model(article_e_config(hp, batch_size), data.input_shape, data.num_classes)

    with tempfile.TemporaryDirectory() as directory:
        tuner = keras_tuner.BayesianOptimization(build, objective="val_accuracy", max_trials=trials, seed=seed,
                                                 directory=directory, project_name="article_e")  # fmt: skip
        tuner.search(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0,
                     validation_data=(data.x_val, data.y_val), callbacks=[Record()])  # fmt: skip
    return time.perf_counter() - started, events


def article_e_space(batch_size: int) -> str:
    """The name of ``mlp_kerastuner`` at ``batch_size`` (registered on first use)."""
    from rtune_fashion.spaces import SPACES, SearchSpace, register_space

    base = get_space("mlp_kerastuner")
    name = base.name if base.params["batch_size"] == batch_size else f"{base.name}_batch{batch_size}"
    if name not in SPACES:
        register_space(SearchSpace(name, {**base.params, "batch_size": batch_size}, base.source))
    return name


def kt_method(tool: str, batch_size: int) -> str:
    return f"{tool}, batch {batch_size}"


KT_TOOLS = ("Keras Tuner BayesianOptimization", "rtune Optuna + ASHA")


def bench_keras_tuner(mode: Mode, args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    batch_of = {kt_method(tool, b): b for b in args.batch_sizes for tool in KT_TOOLS}
    methods = list(batch_of)
    runs: list[dict[str, Any]] = []
    storage = Path(tempfile.mkdtemp(prefix="bench_kt_"))
    for repeat in range(mode.repeats):
        seed = args.seed + repeat
        for method in ordered(methods, repeat):
            batch_size = batch_of[method]
            if method.startswith(KT_TOOLS[0]):
                wall, events = in_fresh_process(args.isolated, keras_tuner_search, data, mode.search_trials,
                                                mode.search_epochs, batch_size, seed)  # fmt: skip
            else:
                call_started = time.time()
                wall, directory = run_tune(data, storage, f"optuna_b{batch_size}_{repeat}",
                                           space=article_e_space(batch_size), searcher="optuna",
                                           num_samples=mode.search_trials, max_epochs=mode.search_epochs, seed=seed)
                events = tune_events(directory, call_started)
            runs.append(record_run(method, repeat, seed, wall, events, mode.targets))
    return {"runs": runs, "methods": methods, "targets": mode.targets, "batch_sizes": list(args.batch_sizes),
            "batch_of": batch_of}


def best_batch_line(runs: list[dict[str, Any]], tool: str, batch_sizes: Sequence[int], target: float) -> str:
    """The tool's median time to ``target`` at its best batch size, as text."""
    times = {b: _median_to_target(runs, kt_method(tool, b), target)[0] for b in batch_sizes}
    reached = {b: t for b, t in times.items() if t is not None}
    if not reached:
        return f"{tool}: not reached"
    batch = min(reached, key=reached.__getitem__)
    return f"{tool} {reached[batch]:.1f} s (batch {batch})"


def table_keras_tuner(result: dict[str, Any], mode: Mode, command: str) -> str:
    runs, methods, targets, batches = result["runs"], result["methods"], result["targets"], result["batch_sizes"]

    def baseline_of(method: str) -> str:  # Keras Tuner at the same batch size
        return kt_method(KT_TOOLS[0], result["batch_of"][method])

    best = [f"- >= {t}: " + "; ".join(best_batch_line(runs, tool, batches, t) for tool in KT_TOOLS) for t in targets]
    return "\n".join([
        f"Article E's MLP space (`mlp_kerastuner`: 1-3 layers of 50-350 units, dropout, SGD or Adam, learning rate), "
        f"{mode.search_trials} trials of up to {mode.search_epochs} epochs each method, {mode.train_size} training / "
        f"{mode.val_size} validation images, batch sizes {', '.join(map(str, batches))}, {mode.repeats} repeats "
        f"(seeds {seeds_of(runs)}); medians. Keras Tuner (`BayesianOptimization`, as its users run it: every trial "
        "its full epochs, one at a time, in a fresh process whose imports are not counted) against rtune (Optuna's "
        "TPE with ASHA, trials of one CPU side by side; Ray's start and the workers' imports counted). Times to the "
        "first epoch of any trial at or above the target; a repeat that never reaches it counts as its whole wall "
        "time; a target not reached in a majority of repeats is 'not reached'.", "",
        *time_to_target_rows(runs, methods, targets, baseline_of, mode.repeats), "",
        "Each tool at its best batch size:", "", *best, "", f"Command: `{command}`"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Output


RUNNERS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., str], str]] = {
    "time_to_target": (bench_time_to_target, table_time_to_target, "Time to a target accuracy"),
    "conditions": (bench_conditions, table_conditions, "Conditional spaces against flat ones"),
    "overhead": (bench_overhead, table_overhead, "Framework overhead"),
    "data_path": (bench_data_path, table_data_path, "Data path"),
    "gpu": (bench_gpu, table_gpu, "GPU: packing trials, first epoch"),
    "keras_tuner": (bench_keras_tuner, table_keras_tuner, "Against Keras Tuner"),
}


def update_doc(doc: Path, section: str, title: str, body: str, stamp: str) -> None:
    """Replace (or append) one section of the benchmark document, keeping the others."""
    replace_section(doc, section, title, f"{stamp}\n\n{body}",
                    new_file="# Benchmarks\n\nWritten by `scripts/benchmark.py`.\n")  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(DEFAULT_SECTIONS))
    parser.add_argument("--repeats", type=int, help="override the mode's repeats")
    parser.add_argument("--train-size", type=int, help="override the mode's training images")
    parser.add_argument("--val-size", type=int, help="override the mode's validation images")
    parser.add_argument("--trials", type=int, help="override the mode's search trials (time_to_target, conditions)")
    parser.add_argument("--epochs", type=int, help="override the mode's epochs per trial (time_to_target)")
    parser.add_argument("--targets", type=float, nargs="+", help="validation accuracies for time_to_target")
    parser.add_argument("--methods", nargs="+", choices=list(TIME_TO_TARGET_METHODS),
                        default=list(TIME_TO_TARGET_METHODS), metavar="METHOD",
                        help="time_to_target: the methods to run, by their names in the table (default: all: "
                             + "; ".join(TIME_TO_TARGET_METHODS) + "); the first is the speed-ups' baseline")
    parser.add_argument("--condition-searchers", nargs="+", choices=CONDITION_SEARCHERS,
                        default=list(CONDITION_SEARCHERS), help="conditions: the searchers compared (default: all)")
    parser.add_argument("--gpu-cpus-per-trial", type=float, default=2.0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128],
                        help="keras_tuner: the batch sizes both tools run at (article E's 32, Keras' usual 128)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--in-one-process", dest="isolated", action="store_false",
                        help="every method in this process and one Ray for the whole run: a check that the script "
                             "works, in less time; start-ups are then left out and the times are not comparable")
    parser.add_argument("--json", type=Path, help="default: results/benchmarks/<mode>-<time>.json")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if not args.isolated and args.doc == DOC:
        parser.error("--in-one-process leaves start-ups out, so its times must not go into docs/benchmarks.md: "
                     "give --doc another file")
    if any(b < 1 for b in args.batch_sizes):
        parser.error(f"--batch-sizes must be positive integers, got {args.batch_sizes}")
    for name in ("repeats", "train_size", "val_size", "trials", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    return args


def mode_of(args: argparse.Namespace) -> Mode:
    base = MODES[args.mode]
    overrides = {"repeats": args.repeats, "train_size": args.train_size, "val_size": args.val_size,
                 "search_trials": args.trials, "condition_trials": args.trials, "search_epochs": args.epochs,
                 "targets": tuple(args.targets) if args.targets else None}  # fmt: skip
    return Mode(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mode = mode_of(args)
    command = "python scripts/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
    data = load_fashion_mnist(args.data_dir, subset={"train": mode.train_size, "val": mode.val_size, "test": 1000},
                              subset_seed=args.seed)  # fmt: skip
    stamp = f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}."
    print(stamp, flush=True)
    results: dict[str, Any] = {"machine": machine(), "mode": args.mode, "settings": mode.__dict__, "sections": {}}
    json_path = args.json or Path("results/benchmarks") / f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    if not args.isolated:
        start_ray()
    for section in args.sections:
        bench, table, title = RUNNERS[section]
        print(f"{title} ...", flush=True)
        started = time.perf_counter()
        result = bench(mode, args, data)
        result["section_wall_s"] = time.perf_counter() - started
        results["sections"][section] = result
        json_path.write_text(json.dumps(results, indent=2, default=str))  # after each section: nothing lost
        body = table(result, mode, command)
        update_doc(args.doc, section, title, body, stamp)
        print(body, flush=True)
    print(f"Wrote {json_path} and {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``rtune`` command, and the entry point every script in ``experiments/`` calls.

    rtune run --space cnn_wide --searcher bohb [--num-samples N --max-epochs N ...]
    rtune resume EXPERIMENT_DIR
    rtune describe PRESET | --config JSON | --keys | --spaces
    rtune report EXPERIMENT_DIR [--top N]
    rtune compare EXPERIMENT_DIR... [--targets 0.85,0.9] [--output-dir DIR]
    rtune rehearse-cluster [--cluster cluster.yaml]

Any :class:`RtuneError` becomes one line on stderr and exit code 2; so do bad flag values (argparse).
Ctrl+C prints the command that resumes the experiment and exits with 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtune_fashion import quiet
from rtune_fashion.errors import ExperimentInterrupted, RtuneError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# ---------------------------------------------------------------------------------------------------
# Flag value types: argparse turns their ArgumentTypeError into "argument --x: ..." and exit code 2


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _number(minimum: float, *, inclusive: bool):
    """A flag type for finite numbers above ``minimum`` (or equal to it when ``inclusive``)."""
    wanted = f"a number of {minimum:g} or more" if inclusive else f"a number above {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    return parse


positive_float = _number(0, inclusive=False)
non_negative_float = _number(0, inclusive=True)


def time_budget(text: str) -> float:
    """Seconds above 0, or ``none`` (no limit, given as infinity so that it differs from "not given")."""
    if text.strip().lower() == "none":
        return math.inf
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, or none, got {text!r}") from None


# Flags whose script defaults give way to --smoke-test's small values (a value the user types always wins).
SCRIPT_DEFAULTS_UNLESS_SMOKE = ("num_samples", "max_epochs", "min_epochs", "train_size", "val_size", "test_size",
                                "time_budget_s")  # fmt: skip


def _default_note(defaults: dict[str, Any], key: str, fallback: str) -> str:
    value = defaults.get(key)
    return f"default: {fallback if value is None else value}; unset with --smoke-test"


def add_experiment_arguments(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """The flags of an experiment run; ``defaults`` come from the script (or ``rtune run``)."""
    from rtune_fashion.search import SCHEDULERS, SEARCHERS
    from rtune_fashion.spaces import SPACES

    d = defaults.get
    parser.add_argument("--space", choices=list(SPACES), default=d("space"), required=d("space") is None,
                        help="search space (see: rtune describe --spaces)")
    parser.add_argument("--searcher", choices=SEARCHERS, default=d("searcher", "hyperopt"))
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=d("scheduler"),
                        help="default: bohb for the bohb searcher, asha otherwise")
    parser.add_argument("--num-samples", type=positive_int, default=None,
                        help="trials to run; with --searcher grid: passes over the grid (default 1). " +
                        _default_note(defaults, "num_samples", "what --time-budget affords, else 10"))
    parser.add_argument("--max-epochs", type=positive_int, default=None,
                        help="epochs of a trial that is never stopped early (" + _default_note(defaults, "max_epochs",
                                                                                          "10") + ")")
    parser.add_argument("--min-epochs", type=positive_int, default=None,
                        help="epochs before early stopping may stop a trial: ASHA's grace period, BOHB's first rung "
                        "(" + _default_note(defaults, "min_epochs", "1") + ")")
    parser.add_argument("--brackets", type=positive_int, default=d("brackets"),
                        help="the scheduler's brackets: 1 may stop every trial from the first rung on (the most "
                        "trials in a time budget), more let some trials run longer first (default: "
                        + ("all of BOHB's, 1 of ASHA's" if d("brackets") is None else str(d("brackets"))) + ")")
    parser.add_argument("--cpus-per-trial", type=positive_float, default=d("cpus_per_trial"),
                        help="CPUs per trial (default: 1; with the default GPUs, the GPU nodes' CPUs shared among "
                        "their trials)")
    parser.add_argument("--gpus-per-trial", type=non_negative_float, default=d("gpus_per_trial"),
                        help="GPUs per trial; fractions share a GPU (0.25 = four trials per GPU); 0 = CPUs only "
                        "(default: 0.25 where the Ray cluster has GPUs or its autoscaler can start nodes with "
                        "them, else 0)")
    parser.add_argument("--max-concurrent", type=positive_int, default=d("max_concurrent"),
                        help="trials at a time (default: as many as resources allow)")
    for split, full, fallback in (("train", "training (Fashion-MNIST: 48,000)", "what --time-budget affords, else all"),
                                  ("val", "validation (12,000)", "what --time-budget affords, else all"),
                                  ("test", "test (10,000)", "all")):
        parser.add_argument(f"--{split}-size", type=positive_int, default=None, help=f"stratified subset of the "
                            f"{full} examples ({_default_note(defaults, f'{split}_size', fallback)})")
    parser.add_argument("--storage", default=d("storage", "results"),
                        help="where experiment directories go: a path, or a shared path / URI on a cluster")
    parser.add_argument("--name", default=d("name"), help="experiment name (default: <space>_<searcher>)")
    parser.add_argument("--seed", type=int, default=d("seed", 0),
                        help="the searcher's and trials' seeds, and also which stratified subsets --train-size, "
                        "--val-size and --test-size draw (default %(default)s)")
    add_data_arguments(parser, defaults)
    parser.add_argument("--address", default=d("address"), help="Ray cluster address ('auto' on a cluster node)")
    parser.add_argument("--max-failures", type=int, default=d("max_failures", 1),
                        help="retries of a failed trial from its last checkpoint (-1: forever)")
    parser.add_argument("--time-budget", dest="time_budget_s", type=time_budget, default=None, metavar="SECONDS",
                        help="end the whole run (measurement, search, final model) within this many seconds; the "
                        "search is fitted to the machine first (a --resume gets what is left of the budget it "
                        "started with); "
                        "none = no limit (" + _default_note(defaults, "time_budget_s", "none") + ")")
    parser.add_argument("--smoke-test", action="store_true",
                        help="2 trials of 2 epochs, one at a time, of the space's smallest architecture on 600 "
                        "images, the final model from the best checkpoint: checks the whole path in about a minute; "
                        "flags you give win over these values")
    parser.add_argument("--flat-space", action="store_true",
                        help="the searchers draw every key of the space every time, ignoring its conditions (units_3 "
                        "at two layers too): what searches did before conditions, for comparisons")
    parser.add_argument("--resume", action="store_true", help="continue the experiment <storage>/<name>")
    parser.add_argument("--no-retrain", dest="retrain", action="store_false",
                        help="no final model: skip retraining the best config and its test evaluation")
    parser.add_argument("--final-model", choices=("auto", "retrain", "checkpoint"), default=d("final_model"),
                        help="retrain the best config from scratch, or take the best trial's last checkpoint; auto "
                        "(default): retrain on the most training images (all first) on which its trial's measured "
                        "time fits in the time budget left (or a config within 0.005 of it that fits all of them, "
                        "when the best fits at most half), else the checkpoint (with --smoke-test: checkpoint); "
                        "retrain and checkpoint always take the best trial")
    parser.add_argument("--ensemble", type=positive_int, default=d("ensemble"), metavar="N",
                        help="a retrained final model averages up to N trainings of its config (seeds seed, "
                        "seed + 1, ...), as many as fit in the time budget left (default: up to 3 with a time "
                        "budget, else 1)")


def add_data_arguments(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """--data and its options (rtune_fashion.sources), for experiments and ``rtune train``; a script whose
    defaults have ``data=None`` requires --data."""
    from rtune_fashion.sources import COLORS

    required = "data" in defaults and defaults["data"] is None
    parser.add_argument("--data", default=None if required else defaults.get("data", "fashion_mnist"),
                        required=required, metavar="fashion_mnist|PATH",
                        help="fashion_mnist" + ("" if required else " (the default)") + "; a folder with a subfolder "
                        "of images per class (or train/ and test/ folders of them); an .npz with x_train and y_train "
                        "(optionally x_val/y_val, x_test/y_test, class_names); a folder of idx files (MNIST, KMNIST); "
                        "a .csv table. Without a test split, a stratified 1/7 is kept apart for the final test")
    parser.add_argument("--color", choices=COLORS, default=defaults.get("color"),
                        help="image folders: the images' colour (default: grayscale when every image is grey)")
    parser.add_argument("--image-size", default=defaults.get("image_size"), metavar="HxW",
                        help="image folders: resize to this (default: the size most images have; said in the output)")
    parser.add_argument("--label", default=defaults.get("label"),
                        help=".csv tables: the label column's header name or 0-based index (default: the last)")
    parser.add_argument("--data-dir", default=defaults.get("data_dir"),
                        help="--data fashion_mnist: directory of its idx files (default: RTUNE_DATA_DIR, Keras' "
                        "cache, Debian's package, then a download)")


def settings_from_args(args: argparse.Namespace, defaults: dict[str, Any] | None = None):  # -> ExperimentSettings
    """Settings from the parsed flags; the script's ``defaults`` fill what was not given, except under
    --smoke-test, whose small values fill it instead (lazy import keeps --help fast)."""
    from rtune_fashion.experiment import ExperimentSettings

    names = {f.name for f in dataclasses.fields(ExperimentSettings)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if not values.get("smoke_test"):
        for key in SCRIPT_DEFAULTS_UNLESS_SMOKE:
            if values.get(key) is None:
                values[key] = (defaults or {}).get(key)
    if values.get("time_budget_s") == math.inf:
        values["time_budget_s"] = None
    if args.min_epochs is None and values.get("min_epochs"):  # the script's default, not typed: made to fit
        from rtune_fashion.search import default_scheduler, nearest_min_epochs

        scheduler = values.get("scheduler") or default_scheduler(values["searcher"])
        values["min_epochs"] = nearest_min_epochs(scheduler, values.get("max_epochs") or 10, values["min_epochs"])
    return ExperimentSettings(**values)


# ---------------------------------------------------------------------------------------------------
# Output


def format_summary(summary: dict[str, Any]) -> str:
    """The result of an experiment for people: the best architecture, its accuracies, the time."""
    from rtune_fashion.models import describe, format_table
    from rtune_fashion.results import confusion_lines, final_model_line, model_shape

    trials = summary["trials"]
    data = summary.get("data")
    lines = [
        "",
        f"Experiment {summary['name']} ({summary['space']}, {summary['searcher']} + {summary['scheduler']}): "
        f"{trials['total']} trials - {trials['finished']} finished, {trials['stopped_early']} stopped early, "
        f"{trials['diverged']} diverged, {trials['errored']} errored",
    ]
    if data:
        shape = "x".join(map(str, data["input_shape"]))
        lines.append(f"Data: {data['source']}, examples of {shape}, {len(data['class_names'])} classes.")
    for errored in summary["errored_trials"]:
        lines.append(f"  {errored['state'].lower()} trial {errored['trial_id']}: {errored['error']}")
    best = summary["best"]
    if best is not None:
        lines.append(f"Best trial {best['trial_id']}: best val accuracy {best['val_accuracy']:.4f} "
                     f"(last epoch {best['last_val_accuracy']:.4f}) in {best['epochs']} epochs. Its configuration:")
        lines += [f"  {key} = {value}" for key, value in best["config"].items()]
        lines += ["", format_table(describe(best["raw_config"], *model_shape(summary))), ""]
    for row in summary.get("grid_repeats") or []:
        if row is summary["grid_repeats"][0]:
            lines.append(f"Each grid point over its {row['repeats']} repeats (best val accuracy, mean ± std):")
        point = ", ".join(f"{key}={value}" for key, value in row["point"].items())
        lines.append(f"  {row['mean']:.4f} ± {row['std']:.4f} ({row['repeats']} repeats): {point}")
    final = summary.get("final_model") or summary.get("retrained")  # "retrained": summaries before issue 14
    if final:
        lines.append(final_model_line(final, best["trial_id"] if best else None))
        lines += confusion_lines(final)
        if final.get("config"):  # another trial's config than the best's
            lines.append(f"Its configuration (trial {final['trial_id']}):")
            lines += [f"  {key} = {value}" for key, value in final["config"].items()]
    lines.append(f"Wall time {summary['wall_time_s']:.0f} s (search {summary['search_time_s']:.0f} s). "
                 f"Results: {summary['experiment_dir']}")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"rtune: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _run(settings) -> int:
    from rtune_fashion.experiment import run_experiment

    try:
        summary = run_experiment(settings)
    except KeyboardInterrupt:  # a second Ctrl+C, or one before Tune started
        print(f"\n{ExperimentInterrupted(settings.experiment_uri)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ExperimentInterrupted as interrupted:
        print(f"\n{interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(format_summary(summary))
    return 0


# ---------------------------------------------------------------------------------------------------
# Entry points


def experiment_main(argv: Sequence[str] | None = None, **defaults: Any) -> int:
    """What ``experiments/*.py`` call: the run flags with the script's own defaults."""
    quiet.import_keras()  # before the flags, whose choices import the spaces (and so Keras)
    parser = argparse.ArgumentParser(description=defaults.pop("description", None))
    add_experiment_arguments(parser, defaults)
    args = parser.parse_args(argv)
    try:
        return _run(settings_from_args(args, defaults))
    except RtuneError as error:
        return _fail(str(error))


def at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more (folds of cross-validation), got {text!r}")
    return value


def cv_experiment_main(argv: Sequence[str] | None = None, *, description: str | None = None,
                       prefix: str = "pima_", grid: str = "optimizer") -> int:  # fmt: skip
    """What ``experiments/pima_grid.py`` calls: GridSearchCV's grids as Ray Tune grid searches, each grid
    point cross-validated on a CSV table (see :mod:`rtune_fashion.crossval`)."""
    quiet.import_keras()
    from rtune_fashion.spaces import SPACES

    grids = [name.removeprefix(prefix) for name in SPACES if name.startswith(prefix)]
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--csv", help="the CSV table (default: the Pima table, downloaded once and checked)")
    parser.add_argument("--label", help="label column: header name or 0-based index (default: the last)")
    parser.add_argument("--grid", choices=[*grids, "all"], default=grid, help="which grid to search")
    parser.add_argument("--folds", type=at_least_two, default=3, help="stratified folds (GridSearchCV: 3 or 5)")
    parser.add_argument("--standardize", action="store_true", help="scale features (fitted on training folds)")
    parser.add_argument("--seed", type=int, default=7, help="folds and model seeds (the article's: 7)")
    parser.add_argument("--cpus-per-trial", type=positive_float, default=1.0)
    parser.add_argument("--max-concurrent", type=positive_int, default=None)
    parser.add_argument("--storage", default="results")
    parser.add_argument("--address", default=None, help="Ray cluster address ('auto' on a cluster node)")
    parser.add_argument("--resume", action="store_true", help="continue the grid's experiment")
    parser.add_argument("--smoke-test", action="store_true", help="2 folds, fits of at most 2 epochs")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.folds = 2
    given = list(sys.argv[1:] if argv is None else argv)
    resume_command = "python " + shlex.join([sys.argv[0], *given, *([] if args.resume else ["--resume"])])
    try:
        return _run_cv(args, [f"{prefix}{g}" for g in (grids if args.grid == "all" else [args.grid])])
    except (KeyboardInterrupt, ExperimentInterrupted) as interrupted:
        directory = getattr(interrupted, "experiment_dir", args.storage)
        print(f"\n{ExperimentInterrupted(directory, resume_command)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RtuneError as error:
        return _fail(str(error))


def _run_cv(args: argparse.Namespace, spaces: list[str]) -> int:
    """Each grid in turn; with ``--resume``, a grid finished before is shown again, one that was started is
    continued, and one not yet started is started (so ``--grid all --resume`` goes on where it stopped)."""
    from rtune_fashion.crossval import check_folds, train_cv, write_cv_results
    from rtune_fashion.experiment import ExperimentSettings, experiment_state, publish, run_experiment
    from rtune_fashion.tabular import load_csv, pima_csv

    data = load_csv(pima_csv(args.csv), label=args.label)
    check_folds(data.y, data.class_names, args.folds)
    for space in spaces:
        settings = ExperimentSettings(
            space=space, searcher="grid", name=f"{space}_grid" + ("_smoke" if args.smoke_test else ""),
            scheduler="fifo", max_epochs=1, seed=args.seed, storage=args.storage,
            cpus_per_trial=args.cpus_per_trial, gpus_per_trial=0.0, max_concurrent=args.max_concurrent,
            address=args.address, retrain=False,  # small tables' folds: the CPUs, as GridSearchCV, GPUs or not
        )  # fmt: skip
        options = {"folds": args.folds, "standardize": args.standardize, "epochs_cap": 2 if args.smoke_test else None}
        state = experiment_state(settings, train_cv, options) if args.resume else "new"
        if state == "finished":
            print(f"\n{space}: finished before, in {settings.experiment_uri}")
        else:
            settings.resume = state == "started"
            run_experiment(settings, trainable=train_cv, data=data, trainable_options=options)
        text, path = write_cv_results(settings.experiment_dir, space)
        publish(settings, path.name)
        print(f"\n{space}: {args.folds}-fold cross-validation\n{text}\nWrote {path}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from rtune_fashion import config as cfg
    from rtune_fashion.models import describe, format_table
    from rtune_fashion.spaces import SPACES

    if args.keys:
        for param in cfg.PARAMS.values():
            per = f" (per {param.index}: {param.name}_<i>)" if param.index else ""
            allowed = f" one of {', '.join(map(str, param.choices))}" if param.choices else ""
            print(f"{param.name:20} {param.kind.__name__:5} default {param.default!r}{per}{allowed}  {param.doc}")
        return 0
    if args.spaces:
        for space in SPACES.values():
            print(f"{space.name:16} {space.source}\n{'':16} {space.description}")
            used_when = [f"{key} when {c.parent} is {' or '.join(map(str, c.values))}"
                         for key, c in space.conditions.items()]  # fmt: skip
            if used_when:
                print(f"{'':16} used only: {'; '.join(used_when)}")
        return 0
    config = _chosen_config(args, "--keys or --spaces")
    print(format_table(describe(config)))
    return 0


def _chosen_config(args: argparse.Namespace, alternatives: str = "") -> dict[str, Any]:
    """The config named by a preset argument or given by ``--config JSON``.

    Raises:
        RtuneError: neither given, or the JSON is invalid (an unknown preset raises ModelConfigError).
    """
    from rtune_fashion.models import PRESETS, preset

    if args.config is not None:
        try:
            return json.loads(args.config)
        except json.JSONDecodeError as error:
            example = """--config '{"model": "mlp"}'"""
            raise RtuneError(f"--config is not valid JSON ({error}). Example: {example}") from None
    if args.preset is not None:
        return preset(args.preset)
    others = f", {alternatives}" if alternatives else ""
    raise RtuneError(f"give a preset ({', '.join(PRESETS)}) or --config JSON{others}")


def _train(args: argparse.Namespace) -> int:
    from rtune_fashion import config as cfg
    from rtune_fashion.retrain import config_epochs, mean_and_std, train_and_test
    from rtune_fashion.sources import DataSource, parse_image_size
    from rtune_fashion.spaces import SearchSpace, check_fits_data

    config = cfg.validate(_chosen_config(args))
    epochs = config_epochs(config, args.epochs)
    sizes = {"train": args.train_size, "val": args.val_size, "test": args.test_size}
    size = parse_image_size(args.image_size) if args.image_size else None
    source = DataSource(args.data, args.color, size, args.label, args.data_dir)
    data = source.load(subset={k: v for k, v in sizes.items() if v is not None} or None, echo=print)
    check_fits_data(SearchSpace(args.preset or "--config", config, ""), data.input_shape, source.describe())
    print(f"Training {args.preset or 'the config'} for {epochs} epochs on {len(data.y_train)} examples, "
          f"seeds {', '.join(map(str, args.seeds))}; validation {len(data.y_val)}, test {len(data.y_test)}.")
    results = []
    for seed in args.seeds:
        model, metrics = train_and_test(config, data, epochs=epochs, seed=seed)
        results.append(metrics)
        print(f"seed {seed}: train {metrics['train_accuracy']:.4f}  val {metrics['val_accuracy']:.4f}  "
              f"test {metrics['test_accuracy']:.4f}  ({metrics['train_time_s']:.0f} s)", flush=True)
        if args.save:
            path = Path(args.save.format(seed=seed))
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
    for key in ("val_accuracy", "test_accuracy"):
        mean, std = mean_and_std([r[key] for r in results])
        print(f"{key.split('_')[0]}: {mean:.4f} ± {std:.4f} over {len(results)} seed(s)")
    return 0


def accuracy_targets(text: str) -> list[float]:
    """``"0.85,0.9"`` -> [0.85, 0.9]; each must be a number in (0, 1]."""
    wrong = argparse.ArgumentTypeError(f"must be accuracies in (0, 1] separated by commas, got {text!r}")
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise wrong from None
    if not values or not all(0 < v <= 1 for v in values):
        raise wrong
    return values


def _report(args: argparse.Namespace) -> int:
    from rtune_fashion.report import compare, write_report

    if args.command == "report":
        print(write_report(args.experiment_dir, top=args.top).text)
    else:
        print(compare(args.experiment_dirs, args.output_dir, args.targets).text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    quiet.import_keras()  # before the flags, whose choices import the spaces (and so Keras)
    parser = argparse.ArgumentParser(prog="rtune", description="Tune Keras models on Fashion-MNIST with Ray Tune.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment")
    add_experiment_arguments(run, {})
    resume = commands.add_parser("resume", help="continue an interrupted experiment")
    resume.add_argument("experiment_dir")
    describe = commands.add_parser("describe", help="layer table of a preset or config; keys; spaces")
    describe.add_argument("preset", nargs="?")
    describe.add_argument("--config", help="a config as JSON")
    describe.add_argument("--keys", action="store_true", help="list every config key")
    describe.add_argument("--spaces", action="store_true", help="list the search spaces")
    report = commands.add_parser("report", help="tables and plots of a finished or running experiment")
    report.add_argument("experiment_dir")
    report.add_argument("--top", type=positive_int, default=5, help="trials in the learning-curve plot")
    compare = commands.add_parser("compare", help="anytime curves and time-to-accuracy of several experiments")
    compare.add_argument("experiment_dirs", nargs="+", metavar="experiment_dir")
    compare.add_argument("--targets", type=accuracy_targets, default=None,
                         help="val accuracies to time, e.g. 0.85,0.88,0.9 (default: four steps up to the best)")
    compare.add_argument("--output-dir", default=".", help="where compare.md and compare.png go")
    train = commands.add_parser("train", help="train a preset (or --config) on the train split, test it once")
    train.add_argument("preset", nargs="?", help="see: rtune describe --spaces, and the presets in README")
    train.add_argument("--config", help="a config as JSON")
    train.add_argument("--epochs", type=positive_int, help="default: the config's epochs, else 10")
    train.add_argument("--seeds", type=int, nargs="+", default=[0], help="one training per seed (mean ± std)")
    add_data_arguments(train, {})
    for split in ("train", "val", "test"):
        train.add_argument(f"--{split}-size", type=positive_int, help=f"stratified subset of the {split} split")
    train.add_argument("--save", help="save each model: a path, {seed} is replaced, e.g. models/best_{seed}.keras")
    rehearse = commands.add_parser("rehearse-cluster", help="rehearse `ray up cluster.yaml` on this machine: Ray's "
                                   "autoscaler over its node types, a smoke search of the main job, then stopped")
    rehearse.add_argument("--cluster", default="cluster.yaml", help="the cluster config (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "rehearse-cluster":
            from rtune_fashion.rehearsal import rehearse

            outcome = rehearse(args.cluster)
            return 0 if outcome["job_succeeded"] and outcome["processes_left"] == 0 else 1
        if args.command in ("report", "compare"):
            return _report(args)
        if args.command == "run":
            return _run(settings_from_args(args))
        if args.command == "resume":
            from rtune_fashion.experiment import load_settings

            return _run(load_settings(args.experiment_dir))
        if args.command == "train":
            return _train(args)
        return _describe(args)
    except RtuneError as error:
        return _fail(str(error))


if __name__ == "__main__":
    raise SystemExit(main())

"""Tables and pictures of an experiment (``rtune report``) and of several side by side (``rtune compare``).

``write_report(DIR)`` works on a finished experiment and on one that is still running (or was
interrupted): it reads what is there now (see :mod:`rtune_fashion.results`) and writes, into the
experiment directory (for a URI: into its local mirror, then uploaded next to it):

* ``trials.csv``: one row per trial, best first;
* ``report.md`` with the pictures in ``report_files/``: the anytime curve (best-so-far val accuracy
  against wall-clock time and against epochs consumed), learning curves of the best trials and of those
  stopped early, parallel coordinates of the hyperparameters, and their fANOVA importance.

``compare(DIRS, OUT)`` puts the anytime curves of several experiments on one plot and tabulates the
time and the epochs each needed to reach given val accuracies.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtune_fashion import config as cfg
from rtune_fashion import plots, storage
from rtune_fashion.errors import ModelConfigError, RtuneError
from rtune_fashion.files import write_atomic
from rtune_fashion.importance import Importance, param_importance
from rtune_fashion.results import (
    FAILED_STATES,
    LIVE_STATES,
    METRIC,
    STATE_LABELS,
    SUMMARY_FILE,
    TRIALS_FILE,
    ExperimentRecord,
    confusion_lines,
    final_model_line,
    load_experiment,
    model_shape,
    read_json,
    write_trials_csv,
)

REPORT_FILE = "report.md"
PICTURES_DIR = "report_files"
COMPARE_FILE = "compare.md"
COMPARE_PICTURE = "compare.png"


# ---------------------------------------------------------------------------------------------------
# The anytime curve


@dataclass
class AnytimeCurve:
    """Best-so-far val accuracy after each reported epoch of any trial, in the order they were reported.

    ``seconds`` counts from the start of the run; ``epochs`` are those consumed by all trials so far
    (failed ones included: they cost time too). Diverged and errored trials never count as the best.
    """

    seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    best: list[float] = field(default_factory=list)

    def first_reaching(self, target: float) -> tuple[float, int] | None:
        """(seconds, epochs) when the best so far first reached ``target``; None if it never did."""
        for seconds, epochs, best in zip(self.seconds, self.epochs, self.best, strict=True):
            if best >= target:
                return seconds, epochs
        return None


def anytime_curve(record: ExperimentRecord) -> AnytimeCurve:
    start = record.start_time() or 0.0
    events = sorted(
        (float(row.get("reported_at", row.get("timestamp", 0))), float(row.get("time_total_s", 0)),
         trial.state in FAILED_STATES, float(row.get(METRIC, math.nan)))
        for trial in record.trials for row in trial.history
    )  # fmt: skip
    curve, best = AnytimeCurve(), -math.inf
    for consumed, (timestamp, _, failed, value) in enumerate(events, start=1):
        if not failed and math.isfinite(value):
            best = max(best, value)
        if math.isfinite(best):
            curve.seconds.append(max(0.0, timestamp - start))
            curve.epochs.append(consumed)
            curve.best.append(best)
    return curve


# ---------------------------------------------------------------------------------------------------
# Text


def short_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def varying_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Keys whose value differs between ``configs`` (or that some configs lack), in first-seen order."""
    keys: dict[str, None] = {}
    for config in configs:
        keys.update(dict.fromkeys(config))
    return [k for k in keys if len({repr(c.get(k, ...)) for c in configs}) > 1]


def short_config(config: dict[str, Any], keys: Sequence[str]) -> str:
    return " ".join(f"{key}={short_value(config[key])}" for key in keys if key in config)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, markdown: bool = False) -> str:
    """A table with aligned columns (numbers right-aligned), or a Markdown one."""
    cells = [[str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in cells) and bool(cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return text in ("", "-")


def _accuracy(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "-"


def ranked_rows(record: ExperimentRecord, keys: Sequence[str]) -> list[list[Any]]:
    """Rank, trial, state, epochs, best val accuracy, config in short form: one row per trial, best first."""
    return [
        [rank, t.trial_id, STATE_LABELS[t.state], t.epochs, _accuracy(t.best_val_accuracy),
         short_config(t.layer_config, keys) or "-"]
        for rank, t in enumerate(record.trials, start=1)
    ]  # fmt: skip


RANKED_HEADERS = ("rank", "trial", "state", "epochs", f"best {METRIC}", "config (what differs between trials)")


def describe_experiment(record: ExperimentRecord) -> str:
    s = record.settings
    summary = read_json(record.directory / SUMMARY_FILE) or {}
    scheduler = summary.get("scheduler") or s.get("scheduler") or "default scheduler"
    status = "search complete" if record.search_done else "search running, or interrupted (rtune resume DIR)"
    return (f"{s.get('space', '?')} space, {s.get('searcher', '?')} + {scheduler}; "
            f"{len(record.trials)} of {s.get('num_samples', '?')} trials, up to {s.get('max_epochs', '?')} "
            f"epochs each; {status}")  # fmt: skip


def best_trial_text(record: ExperimentRecord) -> list[str]:
    """The best trial: its accuracies, its settings in full and its architecture as a layer table."""
    from rtune_fashion.models import describe, format_table

    best = record.best()
    if best is None:
        return ["No trial has reported a val accuracy yet."]
    epoch = max((r for r in best.history if math.isfinite(float(r.get(METRIC, math.nan)))), key=lambda r: r[METRIC])
    lines = [f"Best trial {best.trial_id} ({STATE_LABELS[best.state]}): best {METRIC} "
             f"{best.best_val_accuracy:.4f} at epoch {epoch.get('epoch')} of {best.epochs} "
             f"(last {_accuracy(best.last_val_accuracy)})."]  # fmt: skip
    summary = read_json(record.directory / SUMMARY_FILE) or {}
    final = summary.get("final_model") or summary.get("retrained")  # "retrained": summaries before issue 14
    if final:
        lines.append(final_model_line(final, best.trial_id) + ".")
        lines += confusion_lines(final)
    config = best.effective_config
    lines.append("Configuration: " + ", ".join(f"{k}={short_value(v)}" for k, v in config.items()))
    try:
        lines += ["", format_table(describe(best.config, *model_shape(summary)))]
    except RtuneError as error:  # a custom trainable's config may not be one of our models
        lines.append(f"(no layer table: {error})")
    return lines


# ---------------------------------------------------------------------------------------------------
# The report of one experiment


@dataclass
class Report:
    record: ExperimentRecord
    curve: AnytimeCurve
    importance: Importance | str
    text: str
    markdown_path: Path
    pictures: dict[str, Path]


def compilation_line(record: ExperimentRecord) -> str | None:
    """The search's XLA compilations in one line (the sums of what its trials reported with each epoch,
    :mod:`rtune_fashion.compilations`); None when no trial reported any (a backend other than JAX)."""
    from rtune_fashion.compilations import REPORTED

    rows = [row for t in record.trials for row in t.history if REPORTED[0] in row]
    if not rows:
        return None
    total = {key: sum(float(row.get(key) or 0) for row in rows) for key in REPORTED}
    architectures = set()
    for trial in record.trials:
        try:
            architectures.add(json.dumps(cfg.architecture(trial.config), sort_keys=True))
        except ModelConfigError:  # a custom trainable's config
            continue
    return (f"Compilations (JAX): the training step compiled {total['train_step_compilations']:.0f} time(s) and read "
            f"from the compilation cache {total['train_step_cache_hits']:.0f} time(s), for {len(record.trials)} "
            f"trial(s) of {len(architectures)} architecture(s); {total['compilations']:.0f} XLA compilations in all, "
            f"{total['compile_s']:.1f} s.")


def write_report(directory: str | Path, *, top: int = 5) -> Report:
    """Read the experiment at ``directory`` as it is now; write trials.csv, report.md and its pictures.

    Raises:
        ExperimentError: ``directory`` is not an experiment directory, or no trial has started yet.
    """
    location = str(directory)
    record = load_experiment(storage.local_copy(location))
    write_trials_csv(record)
    pictures_dir = record.directory / PICTURES_DIR
    pictures_dir.mkdir(exist_ok=True)
    name = record.directory.name
    curve = anytime_curve(record)
    keys = varying_keys([t.layer_config for t in record.trials])
    importance = param_importance(record.trials)
    pictures = {
        "anytime": plots.plot_anytime({name: curve}, pictures_dir / "anytime.png", f"Anytime performance: {name}"),
        "learning_curves": plots.plot_learning_curves(record, pictures_dir / "learning_curves.png", top=top),
    }
    if keys:
        path = pictures_dir / "parallel_coordinates.png"
        pictures["parallel_coordinates"] = plots.plot_parallel_coordinates(record, path, keys)
    if isinstance(importance, Importance):
        pictures["importance"] = plots.plot_importance(importance, pictures_dir / "importance.png")

    counts = ", ".join(f"{n} {STATE_LABELS[state]}" for state, n in record.counts().items()
                       if n or state not in LIVE_STATES)  # fmt: skip
    rows = ranked_rows(record, keys)
    compiled = compilation_line(record)
    text = "\n".join([
        f"Experiment {name}: {describe_experiment(record)}",
        f"Trials: {counts}",
        *([compiled] if compiled else []),
        "",
        text_table(RANKED_HEADERS, rows),
        "",
        *best_trial_text(record),
        "",
        f"Wrote {record.directory / TRIALS_FILE} and {record.directory / REPORT_FILE}",
    ])  # fmt: skip
    markdown = _markdown(record, curve, importance, keys, rows, pictures, counts, compiled)
    markdown_path = record.directory / REPORT_FILE
    write_atomic(markdown_path, markdown)
    if storage.is_uri(location):  # the report goes next to the experiment, as for a local one
        storage.upload(record.directory, location.rstrip("/"), [TRIALS_FILE, REPORT_FILE, PICTURES_DIR])
    return Report(record, curve, importance, text, markdown_path, pictures)


def _markdown(
    record: ExperimentRecord,
    curve: AnytimeCurve,
    importance: Importance | str,
    keys: Sequence[str],
    rows: list[list[Any]],
    pictures: dict[str, Path],
    counts: str,
    compiled: str | None = None,
) -> str:
    def picture(key: str, alt: str) -> str:
        return f"![{alt}]({PICTURES_DIR}/{pictures[key].name})" if key in pictures else ""

    fixed = {k: v for k, v in (record.trials[0].layer_config if record.trials else {}).items() if k not in keys}
    parts = [
        f"# Report: {record.directory.name}",
        "",
        f"{describe_experiment(record)}. Written {time.strftime('%Y-%m-%d %H:%M:%S')} by `rtune report`.",
        "",
        f"**Trials:** {counts}.",
        "",
        *([compiled, ""] if compiled else []),
        "## Best trial",
        "",
        "```",
        *best_trial_text(record),
        "```",
        "",
        "## Anytime performance",
        "",
        f"Best {METRIC} so far after {curve.epochs[-1] if curve.epochs else 0} epochs in "
        f"{(curve.seconds[-1] / 60 if curve.seconds else 0):.1f} minutes: "
        f"{_accuracy(curve.best[-1] if curve.best else math.nan)}.",
        "",
        picture("anytime", "best-so-far val accuracy against time and epochs"),
        "",
        "## Learning curves",
        "",
        picture("learning_curves", "val accuracy per epoch"),
        "",
        "## Hyperparameters",
        "",
        "Same in every trial: " + (", ".join(f"{k}={short_value(v)}" for k, v in fixed.items()) or "-") + ".",
        "",
        picture("parallel_coordinates", "parallel coordinates"),
        "",
        "### Importance",
        "",
    ]
    if isinstance(importance, Importance):
        parts += [
            f"{importance.method}, over the {importance.num_trials} trials that reached "
            f"{importance.budget_epochs} epoch(s) (the budget most trials reached, so that they compare fairly); "
            "with few trials, read it as a hint.",
            "",
            text_table(("hyperparameter", "importance"),
                       [(k, f"{v:.3f}") for k, v in importance.values.items()], markdown=True),  # fmt: skip
            "",
            picture("importance", "hyperparameter importance"),
        ]
    else:
        parts.append(f"Not computed: {importance}.")
    parts += ["", "## Ranked trials", "", text_table(RANKED_HEADERS, rows, markdown=True), ""]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------
# Several experiments side by side


def default_targets(curves: Sequence[AnytimeCurve]) -> list[float]:
    """Four round val accuracies, two points apart, ending with the best any experiment reached."""
    best = max((c.best[-1] for c in curves if c.best), default=0.0)
    top = math.floor(best * 100) / 100
    return [round(top - step, 2) for step in (0.06, 0.04, 0.02, 0.0) if top - step > 0]


@dataclass
class Comparison:
    text: str
    markdown_path: Path
    picture: Path
    curves: dict[str, AnytimeCurve]
    targets: list[float]


def compare(
    directories: Sequence[str | Path], output_dir: str | Path, targets: Sequence[float] | None = None
) -> Comparison:
    """Anytime curves of several experiments on one plot, and the time and epochs each needed per target.

    Raises:
        ExperimentError: one of ``directories`` is not an experiment directory with trials.
    """
    records = [load_experiment(storage.local_copy(str(d))) for d in directories]
    labels = [f"{r.directory.name} ({r.settings.get('searcher', '?')})" for r in records]
    if len(set(labels)) < len(labels):
        labels = [f"{label} [{r.directory.parent.name}]" for label, r in zip(labels, records, strict=True)]
    curves = {label: anytime_curve(r) for label, r in zip(labels, records, strict=True)}
    targets = sorted(targets) if targets else default_targets(list(curves.values()))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    picture = plots.plot_anytime(curves, output_dir / COMPARE_PICTURE, "Anytime performance, side by side")

    def reached(curve: AnytimeCurve, target: float) -> str:
        hit = curve.first_reaching(target)
        return f"{hit[0] / 60:.1f} min / {hit[1]} ep" if hit else "not reached"

    headers = ("experiment", "trials", "epochs", "minutes", f"best {METRIC}", *(f">= {t:.2f}" for t in targets))
    rows = [
        [label, len(record.trials), curve.epochs[-1] if curve.epochs else 0,
         f"{curve.seconds[-1] / 60:.1f}" if curve.seconds else "-",
         _accuracy(curve.best[-1] if curve.best else math.nan), *(reached(curve, t) for t in targets)]
        for (label, curve), record in zip(curves.items(), records, strict=True)
    ]  # fmt: skip
    markdown = "\n".join([
        "# Comparison",
        "",
        "Time (minutes since each run started) and epochs (consumed by all its trials) until the best "
        f"{METRIC} so far first reached each target.",
        "",
        text_table(headers, rows, markdown=True),
        "",
        f"![anytime curves]({picture.name})",
        "",
        *(f"- {label}: {r.directory} ({describe_experiment(r)})" for label, r in zip(labels, records, strict=True)),
        "",
    ])  # fmt: skip
    markdown_path = output_dir / COMPARE_FILE
    write_atomic(markdown_path, markdown)
    text = "\n".join([text_table(headers, rows), "", f"Wrote {markdown_path} and {picture}"])
    return Comparison(text, markdown_path, picture, curves, targets)

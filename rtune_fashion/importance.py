"""Which hyperparameters mattered: Optuna's fANOVA evaluator over the trials of an experiment.

Trials stopped early by ASHA or BOHB have fewer epochs than the ones that ran to the end, so their best
val accuracies are not comparable. The objective here is each trial's best val accuracy *within a
common budget*: the largest number of epochs that at least half of the trials (and at least
:data:`MIN_TRIALS`) reached. With BOHB that is often the first rung; with FIFO every epoch.

Only hyperparameters that every such trial has (in the effective config, so keys of layers beyond a
trial's depth are not compared) and that take more than one value are scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtune_fashion import config as cfg
from rtune_fashion.results import FAILED_STATES, METRIC, TrialRecord

MIN_TRIALS = 3


@dataclass
class Importance:
    """Importance per hyperparameter (summing to 1, largest first) and how it was computed."""

    values: dict[str, float]
    budget_epochs: int
    num_trials: int
    method: str = "fANOVA (optuna.importance.FanovaImportanceEvaluator, seed 0)"


def common_budget(trials: Sequence[TrialRecord]) -> int:
    """The most epochs that at least half of ``trials`` (and at least MIN_TRIALS of them) reached; 0 if none."""
    needed = max(MIN_TRIALS, math.ceil(len(trials) / 2))
    epochs = sorted((t.epochs for t in trials), reverse=True)
    return epochs[needed - 1] if len(epochs) >= needed else 0


def _best_within(trial: TrialRecord, budget: int) -> float:
    values = [float(row[METRIC]) for row in trial.history
              if int(row.get("epoch", 0)) <= budget and math.isfinite(float(row.get(METRIC, math.nan)))]  # fmt: skip
    return max(values, default=math.nan)


def _distribution(key: str, values: list[Any]):
    """An Optuna distribution covering ``values``: numeric (log scale for learning rates) or categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if is_numeric(values):
        low, high = float(min(values)), float(max(values))
        return FloatDistribution(low, high, log=cfg.is_log_scale(key) and low > 0)
    return CategoricalDistribution(sorted({str(v) for v in values}))


def is_numeric(values: list[Any]) -> bool:
    """Whether every value is a number (booleans, strings and None are categories)."""
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def param_importance(trials: Sequence[TrialRecord]) -> Importance | str:
    """fANOVA importances over ``trials`` at their common budget, or the reason they cannot be computed."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    usable = [t for t in trials if t.state not in FAILED_STATES and t.epochs > 0]
    budget = common_budget(usable)
    if budget == 0:
        return f"needs at least {MIN_TRIALS} trials with a reported epoch; this experiment has {len(usable)}"
    scored = [(t.layer_config, _best_within(t, budget)) for t in usable if t.epochs >= budget]
    scored = [(config, value) for config, value in scored if math.isfinite(value)]
    shared = set.intersection(*(set(config) for config, _ in scored))
    keys = sorted(k for k in shared if len({repr(config[k]) for config, _ in scored}) > 1)
    if not keys:
        return "every trial has the same hyperparameters, so there is nothing to compare"
    if len({value for _, value in scored}) == 1:
        return f"every trial has the same {METRIC} at {budget} epoch(s), so no hyperparameter explains a difference"
    distributions = {key: _distribution(key, [config[key] for config, _ in scored]) for key in keys}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for config, value in scored:
        params = {key: config[key] if isinstance(distributions[key], optuna.distributions.FloatDistribution)
                  else str(config[key]) for key in keys}  # fmt: skip
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
    values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), normalize=True)
    return Importance(dict(values), budget, len(scored))

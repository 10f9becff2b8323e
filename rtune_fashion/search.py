"""Searchers and schedulers by name, paired so that they work together.

* ``hyperopt``: TPE, what Hyperas does; ``optuna``: Optuna's TPE; ``bohb``: ``TuneBOHB``, always with
  ``HyperBandForBOHB``; ``random``: random sampling; ``grid``: every point of a ``tune.grid_search`` space.
* Schedulers: ``asha`` (the default for all but BOHB), ``fifo`` (no early stopping), and ``bohb``
  (chosen automatically with the BOHB searcher, refused with any other).

Metric and mode are not given here: the experiment sets them once, on ``TuneConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandForBOHB, TrialScheduler
from ray.tune.search import SearchAlgorithm, Searcher
from ray.tune.search.basic_variant import BasicVariantGenerator

from rtune_fashion.errors import SearcherError
from rtune_fashion.spaces import SearchSpace

SEARCHERS = ("hyperopt", "optuna", "bohb", "random", "grid")
SCHEDULERS = ("asha", "fifo", "bohb")
MODEL_BASED = ("hyperopt", "optuna", "bohb")
METRIC, MODE = "val_accuracy", "max"
TIME_ATTR = "training_iteration"  # one iteration = one epoch


@dataclass(frozen=True)
class SearchPlan:
    """What the Tuner needs to decide which trials to run and which to stop."""

    searcher: str
    scheduler_name: str
    search_alg: Searcher | SearchAlgorithm
    scheduler: TrialScheduler


def default_scheduler(searcher: str) -> str:
    return "bohb" if searcher == "bohb" else "asha"


def check_names(searcher: str, scheduler: str | None, space: SearchSpace) -> str:
    """Validate the pairing without building anything; return the scheduler name to use.

    Raises:
        SearcherError: an unknown name, BOHB with another scheduler (or the BOHB scheduler without
            BOHB), a grid space with a model-based or random searcher, or the grid searcher on a space
            that has no grid.
    """
    if searcher not in SEARCHERS:
        raise SearcherError(f"Unknown searcher {searcher!r}. Searchers: {', '.join(SEARCHERS)}.")
    scheduler = scheduler or default_scheduler(searcher)
    if scheduler not in SCHEDULERS:
        raise SearcherError(f"Unknown scheduler {scheduler!r}. Schedulers: {', '.join(SCHEDULERS)}.")
    if (searcher == "bohb") != (scheduler == "bohb"):
        raise SearcherError(
            f"Searcher {searcher!r} cannot run with scheduler {scheduler!r}: BOHB's searcher and its "
            "HyperBandForBOHB scheduler only work together. Fix: use --searcher bohb with --scheduler bohb "
            "(the default for bohb), or another searcher with asha or fifo."
        )
    if space.is_grid and searcher != "grid":
        raise SearcherError(
            f"Space {space.name!r} is a grid (tune.grid_search), which the {searcher!r} searcher cannot "
            "sample. Fix: use --searcher grid, or a space of distributions."
        )
    if searcher == "grid" and not space.is_grid:
        raise SearcherError(
            f"--searcher grid needs a space with tune.grid_search values; {space.name!r} has none. "
            "Fix: use random, hyperopt, optuna or bohb for this space, or the mlp_grid space."
        )
    return scheduler


def bohb_first_rung(max_t: int, reduction_factor: int) -> int:
    """The epochs after which HyperBandForBOHB first stops trials: its most aggressive bracket's start.

    Ray 2.60 (``HyperBandScheduler.__init__``): brackets s = 0 .. round(log(max_t) / log(eta)), each
    starting at ``int(max_t / eta**s)`` epochs; a bracket that would start at 0 is skipped.
    """
    brackets = int(round(math.log(max_t) / math.log(reduction_factor))) + 1 if max_t > 1 else 1
    return min(r for s in range(brackets) if (r := int(max_t * reduction_factor**-s)) > 0)


def bohb_reduction_factor(max_t: int, min_epochs: int) -> int:
    """The smallest reduction factor from 3 whose first rung (:func:`bohb_first_rung`) is at least
    ``min_epochs`` and still stops trials before ``max_t``; where Ray's bracket arithmetic allows none, the
    one whose first rung comes closest (the smallest such factor), and 3 when no factor stops any trial."""
    factors = [eta for eta in range(3, max_t + 1) if bohb_first_rung(max_t, eta) < max_t] or [3]
    return next((eta for eta in factors if bohb_first_rung(max_t, eta) >= min_epochs),
                max(factors, key=lambda eta: (bohb_first_rung(max_t, eta), -eta)))  # fmt: skip


def make_search(
    searcher: str,
    scheduler: str | None,
    space: SearchSpace,
    *,
    max_epochs: int,
    seed: int,
    min_epochs: int = 1,
    max_concurrent: int | None = None,
) -> SearchPlan:
    """The (searcher, scheduler) pair for the names, seeded, with budgets in epochs.

    No trial is stopped early before ``min_epochs`` epochs: ASHA's grace period, and for BOHB the reduction
    factor whose most aggressive bracket starts there (:func:`bohb_reduction_factor`; 3 for 1 epoch).
    ``max_concurrent`` limits the random and grid generators here; Tune applies the limit to the other
    searchers itself (``TuneConfig.max_concurrent_trials``) but ignores it for these.
    """
    scheduler = check_names(searcher, scheduler, space)
    points = [dict(p) for p in space.points_to_evaluate] or None
    if searcher == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        search_alg = HyperOptSearch(points_to_evaluate=points, random_state_seed=seed)
    elif searcher == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search_alg = OptunaSearch(points_to_evaluate=points, sampler=optuna.samplers.TPESampler(seed=seed))
    elif searcher == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        search_alg = TuneBOHB(points_to_evaluate=points, seed=seed)
    else:  # random and grid: Tune's own generator (grid points are expanded, other domains sampled)
        search_alg = BasicVariantGenerator(points_to_evaluate=points, random_state=seed,
                                           max_concurrent=max_concurrent or 0)  # fmt: skip

    if scheduler == "bohb":
        trial_scheduler: TrialScheduler = HyperBandForBOHB(
            time_attr=TIME_ATTR, max_t=max_epochs, reduction_factor=bohb_reduction_factor(max_epochs, min_epochs)
        )
    elif scheduler == "asha":
        trial_scheduler = ASHAScheduler(
            time_attr=TIME_ATTR, max_t=max_epochs, grace_period=min(min_epochs, max_epochs), reduction_factor=3
        )
    else:
        trial_scheduler = FIFOScheduler()
    return SearchPlan(searcher, scheduler, search_alg, trial_scheduler)

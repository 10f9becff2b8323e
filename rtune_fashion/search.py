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
from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandForBOHB, TrialScheduler
from ray.tune.search import SearchAlgorithm, Searcher
from ray.tune.search.basic_variant import BasicVariantGenerator

from rtune_fashion import native
from rtune_fashion.errors import SearcherError
from rtune_fashion.results import METRIC as METRIC  # the one definition of each, re-exported
from rtune_fashion.results import MODE as MODE
from rtune_fashion.spaces import SearchSpace, searched

SEARCHERS = ("hyperopt", "optuna", "bohb", "random", "grid")
SCHEDULERS = ("asha", "fifo", "bohb")
MODEL_BASED = ("hyperopt", "optuna", "bohb")
TIME_ATTR = "training_iteration"  # one iteration = one epoch


@dataclass(frozen=True)
class SearchPlan:
    """What the Tuner needs to decide which trials to run and which to stop, and the ``param_space`` to give
    it: the whole space for the random and grid generators; only the constants for a model-based searcher,
    which holds the space in its own form (rtune_fashion.native) and suggests only the keys a config uses."""

    searcher: str
    scheduler_name: str
    search_alg: Searcher | SearchAlgorithm
    scheduler: TrialScheduler
    param_space: dict[str, Any]


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


class BOHBBands(HyperBandForBOHB):
    """Ray's HyperBandForBOHB whose bands hold only their ``brackets`` most aggressive brackets (None: all
    of them, as Ray and the BOHB paper do). One bracket is successive halving from the first rung on, band
    after band: every trial may be stopped at the first rung, so a time budget buys more trials; each
    further bracket starts its trials at a later rung (the whole band's last runs them all for ``max_t``).
    A bracket ends at ``first rung * factor**s``, which may be below ``max_t`` (at 10 epochs, factor 3:
    1 -> 3 -> 9), so with fewer brackets no trial may reach ``max_t``."""

    def __init__(self, *, brackets: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._brackets = brackets

    def _cur_band_filled(self) -> bool:
        band = self._hyperbands[self._state["band_idx"]]  # Ray keeps None where a bracket would start at 0
        if self._brackets is not None and sum(bracket is not None for bracket in band) >= self._brackets:
            return True
        return super()._cur_band_filled()


def _bohb_brackets(max_t: int, reduction_factor: int, brackets: int | None = None) -> list[tuple[int, int, int]]:
    """(s, trials, first rung) of each bracket of one :class:`BOHBBands` band, in the order BOHB fills them
    (the largest first), read from Ray's own scheduler (``_s_max_1``, ``_get_n0``, ``_get_r0``: Ray is
    pinned to 2.60); brackets that would start at 0 epochs are skipped, as Ray does; the first ``brackets``."""
    band = HyperBandForBOHB(time_attr=TIME_ATTR, max_t=max_t, reduction_factor=reduction_factor)
    every = [(s, band._get_n0(s), band._get_r0(s)) for s in reversed(range(band._s_max_1))]
    return [bracket for bracket in every if bracket[2] > 0][:brackets]


def bohb_first_rung(max_t: int, reduction_factor: int) -> int:
    """The epochs after which HyperBandForBOHB first stops trials: its most aggressive bracket's start."""
    return min(r0 for _, _, r0 in _bohb_brackets(max_t, reduction_factor))


def bohb_reduction_factor(max_t: int, min_epochs: int) -> int:
    """The smallest reduction factor from 3 whose first rung (:func:`bohb_first_rung`) is ``min_epochs`` or
    more and that still stops some trials before ``max_t`` (3 when ``min_epochs`` is 1).

    Raises:
        SearcherError: no factor does (Ray's brackets start at ``int(max_t / factor**s)``), naming the first
            rungs that are possible and a ``--max-epochs`` near ``max_t`` that allows ``min_epochs``.
    """
    factors = [eta for eta in range(3, max_t + 1) if bohb_first_rung(max_t, eta) < max_t] or [3]
    chosen = next((eta for eta in factors if bohb_first_rung(max_t, eta) >= min_epochs), None)
    if chosen is not None or min_epochs <= 1:
        return chosen or 3
    possible = sorted({bohb_first_rung(max_t, eta) for eta in factors})
    nearby = next((m for m in range(max_t + 1, 4 * max_t + 1) if any(
        min_epochs <= bohb_first_rung(m, eta) < m for eta in range(3, m + 1))), None)  # fmt: skip
    raise SearcherError(
        f"BOHB cannot start its brackets at --min-epochs {min_epochs} with --max-epochs {max_t}: Ray's "
        f"HyperBand brackets then start at {', '.join(map(str, possible))} epochs. Fix: --min-epochs "
        f"{max(r for r in possible if r < min_epochs)}" + (f", or --max-epochs {nearby}" if nearby else "") + "."
    )


def nearest_min_epochs(scheduler: str, max_epochs: int, wanted: int) -> int:
    """The largest first rung up to ``wanted`` that ``scheduler`` can have at ``max_epochs`` (for a default
    the user did not type: ``--max-epochs 9`` under BOHB makes a default of 3 into 2)."""
    if scheduler != "bohb":
        return max(1, min(wanted, max_epochs))
    rungs = {bohb_first_rung(max_epochs, eta) for eta in range(3, max_epochs + 1)} | {1}
    return max(r for r in rungs if r <= wanted and (r < max_epochs or r == 1))


def _asha_epochs(max_epochs: int, grace: int) -> float:
    """Epochs per trial in one ASHA bracket: every trial reaches ``grace``, a third of those at each rung
    goes on to the next (Ray's rungs: ``grace * 3**k`` below ``max_epochs``), the last third to the end."""
    rungs = [r for r in (grace * 3**k for k in range(64)) if r < max_epochs]
    segments = zip([0, *rungs], [*rungs, max_epochs], strict=True)
    return sum((end - start) / 3**k for k, (start, end) in enumerate(segments))


def expected_epochs_per_trial(scheduler: str, max_epochs: int, min_epochs: int = 1,
                              brackets: int | None = None) -> float:  # fmt: skip
    """Epochs a trial trains on average under ``scheduler``, from the scheduler's own arithmetic.

    * fifo: all of them;
    * asha: bracket k starts at ``min_epochs * 3**k`` (:func:`_asha_epochs`); Ray puts a trial in a bracket
      with probability proportional to ``e**rungs`` (``brackets`` None: 1);
    * bohb: one whole band of :class:`BOHBBands` (each bracket's trials at its first rung, ``1/factor`` of
      them on at each halving), divided by the band's trials.
    """
    if scheduler == "fifo":
        return float(max_epochs)
    if scheduler == "bohb":
        factor = bohb_reduction_factor(max_epochs, min_epochs)
        epochs = trials = 0.0
        for s, n, rung in _bohb_brackets(max_epochs, factor, brackets):
            trials += n
            done = 0
            for _ in range(s + 1):
                epochs += n * (rung - done)
                done, n, rung = rung, math.ceil(n / factor), min(rung * factor, max_epochs)
        return epochs / trials
    sizes = [len(bracket._rungs) for bracket in _asha(max_epochs, min_epochs, brackets)._brackets]
    weights = [math.exp(n - max(sizes)) for n in sizes]  # as Ray's AsyncHyperBandScheduler.on_trial_add
    graces = [min(min_epochs * 3**s, max_epochs) for s in range(len(sizes))]  # bracket s's first rung
    return sum(w * _asha_epochs(max_epochs, g) for w, g in zip(weights, graces, strict=True)) / sum(weights)


def _asha(max_epochs: int, min_epochs: int, brackets: int | None) -> ASHAScheduler:
    return ASHAScheduler(time_attr=TIME_ATTR, max_t=max_epochs, grace_period=min(min_epochs, max_epochs),
                         reduction_factor=3, brackets=brackets or 1)  # fmt: skip


def make_search(
    searcher: str,
    scheduler: str | None,
    space: SearchSpace,
    *,
    max_epochs: int,
    seed: int,
    min_epochs: int = 1,
    brackets: int | None = None,
    max_concurrent: int | None = None,
    conditional: bool = True,
) -> SearchPlan:
    """The (searcher, scheduler) pair for the names, seeded, with budgets in epochs.

    No trial is stopped early before ``min_epochs`` epochs: ASHA's grace period, and for BOHB the reduction
    factor whose most aggressive bracket starts there (:func:`bohb_reduction_factor`; 3 for 1 epoch).
    ``brackets``: ASHA's (None: 1, Ray's default; Ray makes every bracket asked for, and one without rungs
    runs its trials to ``max_epochs``), or the brackets of each BOHB band (None: all of them;
    :class:`BOHBBands`; more than a band has are all of them).
    The model-based searchers get the space's conditions in their own form (rtune_fashion.native; with
    ``conditional`` False the flat form, every key every time: what benchmarks compare against); the random
    generator draws every key (unused ones do nothing and it models nothing).
    ``max_concurrent`` limits the random and grid generators here; Tune applies the limit to the other
    searchers itself (``TuneConfig.max_concurrent_trials``) but ignores it for these.
    """
    scheduler = check_names(searcher, scheduler, space)
    param_space = dict(space.params)
    if searcher in MODEL_BASED:
        found = space.conditions if conditional else {}
        build = {"hyperopt": native.hyperopt_searcher, "optuna": native.optuna_searcher,
                 "bohb": native.bohb_searcher}[searcher]  # fmt: skip
        search_alg: Searcher | SearchAlgorithm = build(space, conditions=found, seed=seed)
        param_space = {key: value for key, value in space.params.items() if key not in searched(space.params)}
    else:  # random and grid: Tune's own generator (grid points are expanded, other domains sampled)
        points = [dict(p) for p in space.points_to_evaluate] or None
        search_alg = BasicVariantGenerator(points_to_evaluate=points, random_state=seed,
                                           max_concurrent=max_concurrent or 0)  # fmt: skip

    if scheduler == "bohb":
        trial_scheduler: TrialScheduler = BOHBBands(
            time_attr=TIME_ATTR, max_t=max_epochs, reduction_factor=bohb_reduction_factor(max_epochs, min_epochs),
            brackets=brackets,
        )
    elif scheduler == "asha":
        trial_scheduler = _asha(max_epochs, min_epochs, brackets)
    else:
        trial_scheduler = FIFOScheduler()
    return SearchPlan(searcher, scheduler, search_alg, trial_scheduler, param_space)

"""Fit a search to a time budget on the machine at hand: measure, predict, choose.

A search with ``--time-budget`` asks :func:`measure_speed` what one trial's resources do here (a few real
training steps of the space's typical config, on a Ray worker with the trial's CPUs and GPUs), then
:func:`make_plan` chooses what the user did not fix:

* the training subset (48,000 down to 3,000 images) and the validation subset (half the training
  subset, at least 2,000, at most the split), so that the expected trial-epochs (the scheduler's own
  arithmetic: :func:`rtune_fashion.search.expected_epochs_per_trial`) fit the search time;
* the number of trials the remaining time affords (the script's count is the floor);
* the values of shape keys (filters, units, kernel size, depth) to leave out until 90% of the configs the
  space draws need at most :data:`EXPENSIVE_FACTOR` times the epoch the budget affords on average;
* the time kept for the final model after the search, which retrains the best config on more of the data
  than the search saw when that fits (:func:`final_model_choice`), or a config that scored almost as well
  when only it fits all the data (:func:`choose_final`): on a slow machine the search ranks configs on a
  subset, and the final model's accuracy comes from the whole training split.

Epoch times are predicted from forward FLOPs (:func:`rtune_fashion.models.forward_flops`) at the
measured rate: an estimate, recorded next to what the trials then measured. Everything measured and chosen
goes into ``summary.json`` under ``plan``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.search import sample

from rtune_fashion import config as cfg
from rtune_fashion.data import Dataset
from rtune_fashion.errors import ExperimentError
from rtune_fashion.models import forward_flops
from rtune_fashion.search import expected_epochs_per_trial
from rtune_fashion.spaces import SearchSpace, is_grid

MIN_TRAIN_SIZE = 3000  # the smallest training subset a budget chooses (unless the data has fewer)


def train_sizes(full_train: int) -> list[int]:
    """The training subsets a budget tries, largest first: all of them, then halves down to MIN_TRAIN_SIZE
    (Fashion-MNIST: 48,000, 24,000, 12,000, 6,000, 3,000), for data of any size."""
    sizes = [full_train]
    while sizes[-1] // 2 >= MIN_TRAIN_SIZE:
        sizes.append(sizes[-1] // 2)
    return sizes


MIN_VAL_SIZE = 2000
# Keys whose values set a model's cost (width, depth, kernel): the ones a budget may narrow.
COST_KEYS = ("num_layers", "units", "num_blocks", "convs_per_block", "filters", "kernel_size", "num_dense",
             "dense_units")  # fmt: skip
# Values are dropped until this share of the configs the space draws needs at most EXPENSIVE_FACTOR times
# the epoch time that the budget affords on average (search time x trials at once / epochs wanted).
EXPENSIVE_FACTOR = 3.0
CAP_QUANTILE = 0.9
# ... and at least this share of the configs left must be ones the final model can retrain on all the data.
FINAL_QUANTILE = 0.5
# Part of the budget the final model may take at most; beyond it the retraining takes fewer images, or the
# best trial's checkpoint is used. Large, because a search fitted to a slow machine trains on a subset, and
# the final model is where all the data is seen: measured on the main job (docs/MEASURED.md), one training
# on all 48,000 images scored test 0.907-0.922 (0.9166-0.9220 on two cores) and an ensemble of three 0.9274,
# so the plan keeps room for two trainings (PLANNED_TRAININGS) of a config it keeps in the space.
FINAL_SHARE = 0.55
# Trainings of the winner the final model is planned for when it may be an ensemble (Request.final_trainings):
# a second adds about 0.8 points of val accuracy, a third 0.1 (scripts/bench_ensemble.py).
PLANNED_TRAININGS = 2
# A budget without a plan (a custom trainable, a grid) keeps this part of itself for the final model.
UNPLANNED_FINAL_SHARE = 0.25
# Seconds kept free at the end of the final model's time, beyond its predicted training and evaluation
# (starting the step, saving the model, writing the summary).
FINAL_MARGIN_S = 10.0
# Part of the budget the measurement may take before the run gives up (a task no node can start, say).
MEASURE_SHARE = 0.3
MAX_PLANNED_SAMPLES = 200
PROBE_SIZES = {"train": 2048, "val": 1024}
CONFIG_SAMPLES = 300


@dataclass(frozen=True)
class Speed:
    """What one trial's resources did on this machine with one config (seconds per example)."""

    flops: float  # forward FLOPs per example of the measured config
    train_s_per_example: float  # a steady training epoch, per example
    eval_s_per_example: float  # evaluation, per example
    first_epoch_extra_s: float  # the first epoch's extra time: tracing and compilation
    measured_config: dict[str, Any] = field(default_factory=dict)

    def epoch_s(self, flops: float, n_train: int, n_val: int) -> float:
        """Predicted steady epoch (training + validation) of a config of ``flops`` forward FLOPs."""
        scale = max(flops, 1.0) / max(self.flops, 1.0)
        return scale * (n_train * self.train_s_per_example + n_val * self.eval_s_per_example)


@dataclass
class Plan:
    """What a time budget affords here; all of it is recorded in summary.json."""

    budget_s: float
    search_s: float  # the search's share (Tune's time_budget_s): budget - start-up so far - final reserve
    final_reserve_s: float
    slots: int  # trials at once
    train_size: int
    val_size: int
    full_train_size: int  # what the final model may retrain on
    num_samples: int
    epochs_wanted: float  # trial-epochs the search should afford (samples x typical epochs per trial)
    typical_epoch_s: float  # predicted epoch, at these sizes, of the median-cost config the search draws
    cheapest_first_epoch_s: float  # predicted first epoch (with compilation) of the cheapest config
    dropped: dict[str, list[Any]] = field(default_factory=dict)  # key -> values dropped as too expensive
    speed: dict[str, Any] = field(default_factory=dict)
    final_trainings: int = 1  # trainings on all the data the final reserve and the space were sized for

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Plan:
        """The plan as :meth:`to_dict` stored it (settings.json), for a resumed search."""
        names = {f.name for f in dataclasses.fields(cls)}
        stored = {"full_train_size": stored.get("train_size"), **stored}  # plans stored before it existed
        return cls(**{key: value for key, value in stored.items() if key in names})

    def training_share(self) -> float:
        """The part of a search epoch (training + validation at the plan's sizes) spent training."""
        train = self.train_size * self.speed["train_s_per_example"]
        return train / max(train + self.val_size * self.speed["eval_s_per_example"], 1e-12)


# ---------------------------------------------------------------------------------------------------
# Configs of a space, by cost


def sample_configs(space: SearchSpace, n: int = CONFIG_SAMPLES, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` configs drawn from the space's domains (constants as they are), reproducibly."""
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        config = {}
        for key, value in space.params.items():
            if isinstance(value, sample.Function) or is_grid({key: value}):
                continue
            config[key] = value.sample(random_state=rng) if isinstance(value, sample.Domain) else value
        configs.append(cfg.normalize(config))
    return configs


def by_cost(configs: list[dict[str, Any]], input_shape: tuple[int, ...], num_classes: int) -> list[tuple[float, dict]]:
    """(forward FLOPs, config) pairs, cheapest first."""
    costs = [(forward_flops(c, input_shape, num_classes), c) for c in configs]
    return sorted(costs, key=lambda pair: pair[0])


def typical_config(space: SearchSpace, input_shape: tuple[int, ...], num_classes: int, seed: int = 0) -> dict:
    """The median-cost config among samples of the space: what a trial of this space usually trains."""
    ranked = by_cost(sample_configs(space, seed=seed), input_shape, num_classes)
    return ranked[len(ranked) // 2][1]


# ---------------------------------------------------------------------------------------------------
# Measuring


def measure_speed(config: dict[str, Any], data: Dataset, cpus: float, gpus: float) -> Speed:
    """Train ``config`` for two epochs on ``data`` (a small slice) with the given resources and time it.

    Runs where it is called: the experiment calls it as a Ray task with a trial's resources, so the
    threads and the device are the trials' own.
    """
    import keras

    from rtune_fashion import devices
    from rtune_fashion.models import build_model
    from rtune_fashion.training import evaluate, fit_epochs

    devices.configure(cpus, gpus)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(config, data.input_shape, data.num_classes)
    history = fit_epochs(model, config, data, start_epoch=0, end_epoch=2)
    started = time.perf_counter()
    evaluate(model, data.x_val, data.y_val, int(cfg.get(config, "batch_size")))
    eval_s = time.perf_counter() - started
    first, steady = history[0]["epoch_time_s"], history[1]["epoch_time_s"]
    train_s = max(steady - eval_s, 1e-6)
    keras.backend.clear_session()
    return Speed(
        flops=forward_flops(config, data.input_shape, data.num_classes),
        train_s_per_example=train_s / len(data.x_train),
        eval_s_per_example=eval_s / len(data.x_val),
        first_epoch_extra_s=max(first - steady, 0.0),
        measured_config=config,
    )


# ---------------------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True)
class Request:
    """What the user fixed (None: the plan chooses) and what the space and machine are."""

    budget_s: float
    elapsed_s: float  # already spent (start-up, data, the measurement)
    max_epochs: int
    slots: int
    full_train: int
    full_val: int
    train_size: int | None = None
    val_size: int | None = None
    num_samples: int | None = None
    min_samples: int = 10  # the floor of the trial count when the plan chooses it
    scheduler: str = "asha"  # asha, bohb or fifo (every trial runs max_epochs)
    min_epochs: int = 1  # no trial is stopped early before these
    brackets: int | None = None  # the scheduler's (None: its default)
    final_trainings: int = 1  # trainings of the winner on all the data the final model is planned for (0: none)


def final_reserve(speed: Speed, typical_flops: float, request: Request) -> float:
    """Time kept for the final model: retraining the typical config ``request.final_trainings`` times for
    every epoch on all the training data, at most :data:`FINAL_SHARE` of the budget left after start-up
    (beyond it the retraining takes fewer images, or the best trial's checkpoint is the final model)."""
    full_epoch = speed.epoch_s(typical_flops, request.train_size or request.full_train, 0)
    return min(FINAL_SHARE * (request.budget_s - request.elapsed_s),
               request.final_trainings * full_epoch * request.max_epochs)  # fmt: skip


@dataclass(frozen=True)
class FinalChoice:
    """How the final model is made: ``source`` "retrained" (on ``train_size`` images) or "checkpoint"."""

    source: str
    why: str
    train_size: int | None = None


def final_model_choice(choice: str, trial_s: float, search_train: int, full_train: int,
                       left_s: float) -> FinalChoice:  # fmt: skip
    """The final model for ``--final-model`` ``choice`` (auto, retrain, checkpoint).

    ``trial_s`` is the best trial's measured training time (all its epochs, on ``search_train`` images,
    validation left out: the final model validates once, at the end, and its time is not predicted),
    ``left_s`` the seconds left before the deadline (inf without one). Retraining takes the largest
    training set whose predicted time (``trial_s`` scaled by the images) fits in ``left_s``: all
    ``full_train`` images first, then the ladder's sizes above the search's subset, then that subset.
    ``auto`` falls back to the best trial's checkpoint when none fits; ``retrain`` then retrains on the
    search's subset anyway.
    """
    if choice == "checkpoint":
        return FinalChoice("checkpoint", "--final-model checkpoint")
    sizes = sorted({full_train, search_train, *(n for n in train_sizes(full_train) if search_train < n)},
                   reverse=True)  # fmt: skip
    left = "" if math.isinf(left_s) else f"; {max(left_s, 0):.0f} s were left"
    for n in sizes:
        needed = trial_s * n / max(search_train, 1)
        if needed <= left_s:
            more = f", about {needed:.0f} s on {n}" if n != search_train else ""
            why = f"its trial trained for {trial_s:.0f} s on {search_train} images{more}{left}"
            return FinalChoice("retrained", "--final-model retrain; " + why if choice == "retrain" else why, n)
    if choice == "retrain":
        return FinalChoice("retrained", f"--final-model retrain (about {trial_s:.0f} s{left})", search_train)
    return FinalChoice("checkpoint", f"retraining would take about {trial_s:.0f} s{left}")


# How far below the best trial's val accuracy (on the search's subset) another trial's last epoch may score
# and still be the final model in its place, when the best can be retrained on at most half of the training
# data in the time left and the other one on all of it. Measured on the main job, data is worth more than
# that: doubling the images raised the winner's val by 0.85 points (--seed 1: 0.8920 on 6,000 images, then
# 0.9005 and 0.9020 on 12,000), and 6,000 to 48,000 by 2.7 points (docs/MEASURED.md).
FULL_DATA_MARGIN = 0.005


@dataclass(frozen=True)
class Contender:
    """A trial the final model may retrain: its scores, epochs and measured times."""

    trial_id: str
    val_accuracy: float  # its best epoch's, as the ranking uses: what retraining for ``epochs`` aims at
    epochs: int  # the epochs a retraining trains: those of its best val accuracy
    train_s: float  # the training of those epochs on the search's subset, validation left out
    overhead_s: float  # what the final step spends beside training (evaluating val and test, saving)


def choose_final(choice: str, ranked: list[Contender], search_train: int, full_train: int,
                 time_left_s: float) -> tuple[Contender, FinalChoice]:  # fmt: skip
    """The trial whose config the final model comes from, and how (:func:`final_model_choice`).

    ``ranked`` is best first. It is the best trial, unless ``choice`` is ``auto``, its retraining fits at
    most half of the ``full_train`` images in ``time_left_s`` (or none: its checkpoint, trained on
    ``search_train``), and another trial whose best epoch came no sooner and is within
    :data:`FULL_DATA_MARGIN` of the best's val accuracy can be retrained on all of them: then the best such
    trial is (the search ranked configs on a subset, and twice the data is worth more than the margin). Its
    ``why`` names both trials.
    """
    best = ranked[0]
    made = final_model_choice(choice, best.train_s, search_train, full_train, time_left_s - best.overhead_s)
    best_images = made.train_size if made.source == "retrained" else search_train
    if choice != "auto" or 2 * (best_images or 0) > full_train:
        return best, made
    for other in ranked[1:]:
        needed = other.train_s * full_train / max(search_train, 1)
        left = time_left_s - other.overhead_s
        close = other.val_accuracy >= best.val_accuracy - FULL_DATA_MARGIN and other.epochs >= best.epochs
        if close and needed <= left:
            short = (f"on {made.train_size} images only" if made.source == "retrained"
                     else "not at all (its checkpoint would be the final model)")  # fmt: skip
            why = (f"the best trial {best.trial_id} (val {best.val_accuracy:.4f}) could be retrained {short}; "
                   f"trial {other.trial_id} (val {other.val_accuracy:.4f}, within {FULL_DATA_MARGIN:g}) "
                   f"trained for {other.train_s:.0f} s on {search_train} images, about {needed:.0f} s on "
                   f"{full_train}; {max(left, 0):.0f} s were left")  # fmt: skip
            return other, FinalChoice("retrained", why, full_train)
    return best, made


def _val_size(request: Request, train_size: int) -> int:
    if request.val_size is not None:
        return request.val_size
    return min(request.full_val, max(MIN_VAL_SIZE, train_size // 2))


@dataclass(frozen=True)
class _Fit:
    """Sizes and counts that a budget affords for configs of a given typical cost."""

    reserve_s: float
    search_s: float
    train_size: int
    val_size: int
    typical_epoch_s: float
    cheapest_first_epoch_s: float
    num_samples: int


def _average_epoch_s(request: Request, search_s: float, per_trial: float) -> float:
    """The epoch the search affords on average: its time x trials at once / the trial-epochs it wants."""
    return search_s * request.slots / ((request.num_samples or request.min_samples) * per_trial)


def _fit(request: Request, speed: Speed, cheapest_flops: float, typical_flops: float, per_trial: float,
         space_name: str) -> _Fit:  # fmt: skip
    """The final reserve, the search's time, the trial count, and the largest training subset at which a
    config of ``typical_flops`` has at most the average epoch the search affords and the cheapest config's
    first epoch fits in the search; the smallest subset when none does.

    Raises:
        ExperimentError: not even the cheapest config's first epoch fits (see :func:`make_plan`).
    """
    reserve = final_reserve(speed, typical_flops, request)
    search_s = request.budget_s - request.elapsed_s - reserve
    average = _average_epoch_s(request, search_s, per_trial)

    def cheapest_first(n_train: int) -> float:
        return speed.first_epoch_extra_s + speed.epoch_s(cheapest_flops, n_train, _val_size(request, n_train))

    def fits(n_train: int) -> bool:
        typical_epoch = speed.epoch_s(typical_flops, n_train, _val_size(request, n_train))
        return typical_epoch <= average and cheapest_first(n_train) <= search_s

    # all the data first, then the ladder's smaller subsets
    sizes = [request.train_size] if request.train_size else train_sizes(request.full_train)
    train_size = next((n for n in sizes if fits(n)), sizes[-1])
    val_size = _val_size(request, train_size)
    if search_s < cheapest_first(train_size):
        needed = request.elapsed_s + reserve + 3 * cheapest_first(train_size)
        raise ExperimentError(
            f"--time-budget {request.budget_s:g} s cannot fit a single epoch here: after {request.elapsed_s:.0f} s "
            f"of start-up, the cheapest config of {space_name!r} needs about {cheapest_first(train_size):.0f} s for "
            f"its first epoch on {train_size} images (measured on this machine), and {reserve:.0f} s are kept for "
            f"the final model. Fix: --time-budget {math.ceil(needed / 10) * 10} or more, or a smaller --train-size."
        )
    typical_epoch = speed.epoch_s(typical_flops, train_size, val_size)
    num_samples = request.num_samples
    if num_samples is None:
        afford = int(search_s * request.slots / typical_epoch / per_trial)
        num_samples = min(MAX_PLANNED_SAMPLES, max(request.min_samples, afford))
    return _Fit(reserve, search_s, train_size, val_size, typical_epoch, cheapest_first(train_size), num_samples)


def _kept(ranked: list[tuple[float, dict[str, Any]]], dropped: dict[str, list[Any]]) -> list[tuple[float, dict]]:
    """The (FLOPs, config) pairs of ``ranked`` that use none of the ``dropped`` values."""
    return [(f, c) for f, c in ranked if all(c.get(k) not in values for k, values in dropped.items())]


def _median_flops(ranked: list[tuple[float, dict[str, Any]]]) -> float:
    """The cost of the median config of ``ranked`` (sorted cheapest first): a typical config's."""
    return ranked[len(ranked) // 2][0]


def make_plan(request: Request, space: SearchSpace, speed: Speed, input_shape: tuple[int, ...],
              num_classes: int, seed: int = 0) -> tuple[Plan, SearchSpace]:  # fmt: skip
    """Choose sizes, trial count and space values that fit ``request.budget_s``; the narrowed space.

    First the values too expensive for the budget are left out, judged with sizes fitted to the whole
    space's typical config; then the sizes, the reserve and the trial count are fitted again to the typical
    config of the configs left, which the search will draw (cheaper: fitted to the whole space, a main-job
    search on 3,000 images ended after 344 s of its 528), never at a smaller subset than the first fit. The
    rules that leave values out are judged at the first fit's sizes: at the re-fit's larger subset the
    configs kept cost more per epoch, and the trial count follows their median.

    Raises:
        ExperimentError: the budget cannot fit even one first epoch of the space's cheapest config at
            the smallest training subset (the message names the budget, the predicted first epoch and
            the budget that would do).
    """
    ranked = by_cost(sample_configs(space, seed=seed), input_shape, num_classes)
    cheapest_flops = ranked[0][0]
    per_trial = expected_epochs_per_trial(request.scheduler, request.max_epochs, request.min_epochs,
                                          request.brackets)
    whole = _fit(request, speed, cheapest_flops, _median_flops(ranked), per_trial, space.name)
    train_size, val_size = whole.train_size, whole.val_size
    cap = EXPENSIVE_FACTOR * _average_epoch_s(request, whole.search_s, per_trial)
    dropped = too_expensive(space, ranked, speed, cap, train_size, val_size)
    full_train = request.train_size or request.full_train
    if request.final_trainings:
        # Then the final model: at least half of the configs left must be ones it can retrain on all the
        # training data for every epoch, final_trainings times, within its largest share (as an epoch at the
        # search's sizes of the config with the FLOPs that share affords); a winner beyond that is retrained
        # fewer times or on fewer images.
        left = request.budget_s - request.elapsed_s
        final_flops = (speed.flops * FINAL_SHARE * left / request.final_trainings / request.max_epochs
                       / (full_train * speed.train_s_per_example))  # fmt: skip
        final_cap = speed.epoch_s(final_flops, train_size, val_size)
        for key, values in too_expensive(space.without(dropped), _kept(ranked, dropped), speed, final_cap, train_size,
                                         val_size, quantile=FINAL_QUANTILE).items():  # fmt: skip
            dropped[key] = [v for v in space.values_of(key) if v in values or v in dropped.get(key, [])]
    kept = _kept(ranked, dropped)
    fitted = whole
    if dropped:
        refit = _fit(request, speed, cheapest_flops, _median_flops(kept), per_trial, space.name)
        fitted = refit if refit.train_size >= whole.train_size else whole
    plan = Plan(
        budget_s=request.budget_s, search_s=fitted.search_s, final_reserve_s=fitted.reserve_s, slots=request.slots,
        train_size=fitted.train_size, val_size=fitted.val_size, full_train_size=full_train,
        num_samples=fitted.num_samples, epochs_wanted=(request.num_samples or request.min_samples) * per_trial,
        typical_epoch_s=fitted.typical_epoch_s, cheapest_first_epoch_s=fitted.cheapest_first_epoch_s,
        dropped=dropped,
        speed={**dataclasses.asdict(speed), "typical_flops": _median_flops(ranked), "cheapest_flops": cheapest_flops,
               "kept_typical_flops": _median_flops(kept)},
        final_trainings=request.final_trainings,
    )  # fmt: skip
    return plan, space.without(dropped)


def too_expensive(space: SearchSpace, ranked: list[tuple[float, dict[str, Any]]], speed: Speed, cap_s: float,
                   n_train: int, n_val: int, quantile: float = CAP_QUANTILE) -> dict[str, list[Any]]:  # fmt: skip
    """Values of cost keys to leave out so that ``quantile`` of the configs the space draws (the sampled
    ``ranked`` ones) have an epoch of at most ``cap_s``: one value at a time, the one whose configs cost
    the most relative to the other configs still kept (each key keeps at least one value).

    Costs compound (64 filters with 5x5 kernels and 3 blocks), so values are judged on the configs they
    appear in, not one key at a time. Judged relative to the rest, the widest values (64 filters: 4x the
    others' cost) go before depth (2 convs per block: 1.7x), which buys accuracy more cheaply."""
    keys = [key for key, domain in space.params.items() if cfg.split_key(key)[0] in COST_KEYS
            and isinstance(domain, sample.Categorical | sample.Integer) and len(space.values_of(key)) > 1]  # fmt: skip
    kept = {key: set(space.values_of(key)) for key in keys}

    def kept_configs() -> list[tuple[float, dict[str, Any]]]:
        return [(f, config) for f, config in ranked if all(config.get(k) in values for k, values in kept.items())]

    def epoch_at_quantile() -> float:
        flops = [f for f, _ in kept_configs()]
        return speed.epoch_s(float(np.quantile(flops, quantile)), n_train, n_val) if flops else 0.0

    while epoch_at_quantile() > cap_s:
        options = []
        for key in (k for k in keys if len(kept[k]) > 1):
            by_value: dict[Any, list[float]] = {}
            for flops, config in kept_configs():
                by_value.setdefault(config.get(key), []).append(flops)
            if len(by_value) < 2:
                continue
            costliest = max(by_value, key=lambda value: float(np.mean(by_value[value])))
            rest = [f for value, flops in by_value.items() if value != costliest for f in flops]
            options.append((float(np.mean(by_value[costliest])) / float(np.mean(rest)), key, costliest))
        if not options:
            break
        _, key, value = max(options, key=lambda option: option[0])
        kept[key] = kept[key] - {value}
    return {key: [v for v in space.values_of(key) if v not in kept[key]] for key in keys if kept[key] != set(
        space.values_of(key))}


# Layers that cost little arithmetic but a lot of tracing per new model (each trial builds one): off in the
# smoke test when the space allows it.
SMOKE_OFF = {"batch_norm": False, "dense_batch_norm": False, "augment_flip": False, "augment_translate": 0.0}


def cheapest_values(space: SearchSpace) -> dict[str, list[Any]]:
    """The space's cheapest architecture, for the smoke test: the smallest value of every cost key, the
    largest batch size (fewest steps), no batch norm or augmentation where the space has them off. Other
    keys (rates, dropout, optimizer) are still searched."""
    keep: dict[str, list[Any]] = {}
    for key, domain in space.params.items():
        if not isinstance(domain, sample.Categorical | sample.Integer):
            continue
        base = cfg.split_key(key)[0]
        values = space.values_of(key)
        if base in COST_KEYS:
            keep[key] = [min(values)]
        elif base == "batch_size":
            keep[key] = [max(values)]
        elif base in SMOKE_OFF and SMOKE_OFF[base] in values:
            keep[key] = [SMOKE_OFF[base]]
    return keep


def describe_plan(plan: Plan, cpus: float, gpus: float) -> str:
    """The plan in two lines for the terminal: what was measured, what was chosen."""
    speed = plan.speed
    rate = 1.0 / (speed["train_s_per_example"] + 1e-12)
    device = f"{cpus:g} CPU" + (f" + {gpus:g} GPU" if gpus else "")
    dropped = "; ".join(f"{key} {', '.join(map(str, values))}" for key, values in plan.dropped.items())
    times = f" {plan.final_trainings} times, an ensemble," if plan.final_trainings > 1 else ""
    final = (f"{plan.final_reserve_s:.0f} s kept for the final model (the best config retrained on all "
             f"{plan.full_train_size} training images{times} when it fits)" if plan.final_trainings
             else "no final model (--no-retrain): the search has all the time")  # fmt: skip
    return (
        f"Measured here ({device} per trial): {rate:,.0f} training images/s on the typical config "
        f"({speed['flops'] / 1e6:.1f} MFLOPs per image), first epoch +{speed['first_epoch_extra_s']:.1f} s. "
        f"Predicted epoch of a typical config searched: {plan.typical_epoch_s:.1f} s.\n"
        f"Fitted to {plan.search_s:.0f} s of search x {plan.slots} trial(s) at once: {plan.train_size} training and "
        f"{plan.val_size} validation images, up to {plan.num_samples} trials"
        + (f"; too slow for this budget, left out: {dropped}" if dropped else "")
        + f"; {final}."
    )

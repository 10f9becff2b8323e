from __future__ import annotations

import math

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandForBOHB

from rtune_fashion import config as cfg
from rtune_fashion.errors import SearcherError
from rtune_fashion.models import build_model
from rtune_fashion.search import (
    METRIC,
    MODE,
    bohb_first_rung,
    bohb_reduction_factor,
    expected_epochs_per_trial,
    make_search,
)
from rtune_fashion.spaces import SearchSpace, get_space, searched


@pytest.mark.parametrize(
    ("searcher", "space"),
    [("hyperopt", "mlp_hyperas"), ("optuna", "mlp_kerastuner"), ("bohb", "cnn_wide"), ("random", "cnn_hyperas"),
     ("grid", "mlp_grid")],
)  # fmt: skip
def test_every_searcher_suggests_configs_the_builders_accept(searcher: str, space: str) -> None:
    """The contract every searcher must meet: its suggestions are valid, buildable configs."""
    plan = make_search(searcher, None, get_space(space), max_epochs=4, seed=1)
    if searcher in ("random", "grid"):
        experiment = tune.Experiment("contract", run=lambda config: None, config=plan.param_space, num_samples=3)
        plan.search_alg.add_configurations(experiment)
        suggestions = [plan.search_alg.next_trial().config for _ in range(3)]
    else:
        assert not plan.search_alg.set_search_properties(METRIC, MODE, plan.param_space)  # it has its own space
        assert not any(hasattr(value, "sample") for value in plan.param_space.values())  # so Tune gets constants
        suggestions = [plan.search_alg.suggest(f"trial{i}") for i in range(3)]
    for suggestion in suggestions:
        config = cfg.validate({**plan.param_space, **suggestion})  # as Tune merges; numpy scalars normalised
        assert all(not type(v).__module__.startswith("numpy") for v in config.values())
        assert build_model(config).count_params() > 0


def test_seeded_searchers_repeat_their_suggestions() -> None:
    def first(seed: int) -> dict:
        plan = make_search("hyperopt", None, get_space("mlp_hyperas"), max_epochs=4, seed=seed)
        return plan.search_alg.suggest("t")

    assert first(7) == first(7)
    assert first(7) != first(8)


def test_grid_searcher_expands_every_grid_point() -> None:
    plan = make_search("grid", None, get_space("mlp_grid"), max_epochs=4, seed=0)
    plan.search_alg.add_configurations(
        tune.Experiment("grid", run=lambda config: None, config=get_space("mlp_grid").params, num_samples=1)
    )
    points = set()
    while (trial := plan.search_alg.next_trial()) is not None:
        points.add((trial.config["optimizer"], trial.config["learning_rate"]))
    assert points == {(o, lr) for o in ("adam", "sgd", "rmsprop", "nadam") for lr in (1e-3, 1e-2, 1e-1)}


def test_default_schedulers() -> None:
    bohb = make_search("bohb", None, get_space("cnn_wide"), max_epochs=9, seed=0).scheduler
    assert isinstance(bohb, HyperBandForBOHB)
    asha = make_search("optuna", None, get_space("cnn_wide"), max_epochs=9, seed=0).scheduler
    assert isinstance(asha, ASHAScheduler)
    fifo = make_search("hyperopt", "fifo", get_space("cnn_wide"), max_epochs=9, seed=0).scheduler
    assert isinstance(fifo, FIFOScheduler)


@pytest.mark.parametrize(
    ("searcher", "scheduler", "space", "message"),
    [
        ("bohb", "asha", "cnn_wide", r"'bohb' cannot run with scheduler 'asha'.*only work together"),
        ("hyperopt", "bohb", "cnn_wide", r"'hyperopt' cannot run with scheduler 'bohb'"),
        ("hyperopt", None, "mlp_grid", r"'mlp_grid' is a grid .* 'hyperopt' searcher cannot sample.*--searcher grid"),
        ("bohb", None, "mlp_grid", r"is a grid"),
        ("grid", None, "cnn_wide", r"--searcher grid needs a space with tune.grid_search values"),
        ("tpe", None, "cnn_wide", r"Unknown searcher 'tpe'. Searchers: hyperopt, optuna, bohb, random, grid"),
        ("optuna", "median", "cnn_wide", r"Unknown scheduler 'median'. Schedulers: asha, fifo, bohb"),
    ],
)
def test_misuse_is_refused(searcher: str, scheduler: str | None, space: str, message: str) -> None:
    with pytest.raises(SearcherError, match=message):
        make_search(searcher, scheduler, get_space(space), max_epochs=4, seed=0)


@pytest.mark.parametrize(
    ("max_t", "factor", "first"),
    [(12, 3, 1), (12, 4, 3), (9, 3, 1), (9, 4, 2), (27, 6, 4), (3, 4, 3), (2, 3, 2), (1, 3, 1)],
)
def test_bohb_first_rung_is_where_rays_first_bracket_starts(max_t: int, factor: int, first: int) -> None:
    # Ray 2.60: brackets start at int(max_t / factor**s), s < round(log(max_t) / log(factor)) + 1; 0 is skipped.
    # Computed by hand here; bohb_first_rung reads Ray's own scheduler.
    assert bohb_first_rung(max_t, factor) == first


@pytest.mark.parametrize(("max_t", "min_epochs", "factor"), [(12, 1, 3), (12, 3, 4), (27, 4, 6), (9, 2, 4), (1, 1, 3)])
def test_bohb_reduction_factor_starts_its_brackets_at_min_epochs(max_t: int, min_epochs: int, factor: int) -> None:
    assert bohb_reduction_factor(max_t, min_epochs) == factor


def test_a_first_rung_that_rays_brackets_cannot_start_at_is_refused_with_the_fix() -> None:
    with pytest.raises(SearcherError) as caught:
        make_search("bohb", None, get_space("cnn_wide"), max_epochs=9, seed=0, min_epochs=3)
    assert str(caught.value) == ("BOHB cannot start its brackets at --min-epochs 3 with --max-epochs 9: Ray's "
                                 "HyperBand brackets then start at 1, 2 epochs. "
                                 "Fix: --min-epochs 2, or --max-epochs 12.")


@pytest.mark.parametrize(
    ("scheduler", "max_epochs", "min_epochs", "epochs"),
    [
        ("fifo", 9, 1, 9.0),
        ("asha", 10, 1, 1 + 2 / 3 + 6 / 9 + 1 / 27),  # rungs 1, 3, 9; a third goes on at each
        ("asha", 12, 3, 3 + 6 / 3 + 3 / 9),  # rungs 3, 9
        # HyperBandForBOHB at 10 epochs: brackets of 9 trials (1 -> 3 -> 9 epochs), 5 (3 -> 9), 3 (10):
        # 78 epochs for 17 trials; docs/benchmarks.md measured 93 epochs for 20 trials
        ("bohb", 10, 1, (9 + 3 * 2 + 6) / 17 + (5 * 3 + 2 * 6) / 17 + 3 * 10 / 17),
        ("bohb", 12, 3, (6 * 3 + 2 * 9 + 3 * 12) / 9),  # the main job's: factor 4, brackets of 6 (3 -> 12) and 3
    ],
)
def test_expected_epochs_per_trial_follow_the_schedulers_rungs(scheduler: str, max_epochs: int, min_epochs: int,
                                                               epochs: float) -> None:  # fmt: skip
    assert expected_epochs_per_trial(scheduler, max_epochs, min_epochs) == pytest.approx(epochs)


@pytest.mark.parametrize(
    ("scheduler", "max_epochs", "min_epochs", "brackets", "epochs"),
    [
        ("bohb", 10, 1, 1, (9 + 3 * 2 + 6) / 9),  # the 9-trial bracket only: 1 -> 3 -> 9 epochs
        ("bohb", 10, 1, 2, (9 + 3 * 2 + 6 + 5 * 3 + 2 * 6) / 14),
        ("bohb", 10, 1, 7, (9 + 3 * 2 + 6 + 5 * 3 + 2 * 6 + 3 * 10) / 17),  # more than there are: all of them
        ("bohb", 12, 3, 1, (6 * 3 + 2 * 9) / 6),
        ("asha", 10, 1, 1, 1 + 2 / 3 + 6 / 9 + 1 / 27),
        # bracket 0: rungs 1, 3, 9; bracket 1: rungs 3, 9 (3 + 6/3 + 1/9 epochs); Ray weighs them e**rungs
        ("asha", 10, 1, 2, ((1 + 2 / 3 + 6 / 9 + 1 / 27) + math.exp(-1) * (3 + 2 + 1 / 9)) / (1 + math.exp(-1))),
    ],
)  # fmt: skip
def test_expected_epochs_per_trial_count_the_brackets_asked_for(scheduler: str, max_epochs: int, min_epochs: int,
                                                                brackets: int, epochs: float) -> None:  # fmt: skip
    assert expected_epochs_per_trial(scheduler, max_epochs, min_epochs, brackets) == pytest.approx(epochs)


def _bracket_first_rungs(scheduler: HyperBandForBOHB, trials: int) -> list[int]:
    """The first rung of the bracket each of ``trials`` new trials is put in (no Ray needed)."""
    from ray.tune.experiment import Trial

    rungs = []
    for i in range(trials):
        trial = Trial("f", stub=True, trial_id=str(i))
        scheduler.on_trial_add(None, trial)
        rungs.append(scheduler._trial_info[trial][0]._r)
    return rungs


def test_one_bohb_bracket_puts_every_trial_in_the_most_aggressive_one_band_after_band() -> None:
    def bohb(brackets: int | None) -> HyperBandForBOHB:
        scheduler = make_search("bohb", None, get_space("mlp_hyperas"), max_epochs=10, seed=0,
                                brackets=brackets).scheduler  # fmt: skip
        scheduler.set_search_properties(METRIC, MODE)
        return scheduler

    assert _bracket_first_rungs(bohb(None), 20) == [1] * 9 + [3] * 5 + [10] * 3 + [1] * 3  # Ray's whole band
    assert _bracket_first_rungs(bohb(1), 20) == [1] * 20
    assert _bracket_first_rungs(bohb(2), 20) == [1] * 9 + [3] * 5 + [1] * 6


def test_brackets_reach_ashas_scheduler() -> None:
    asha = make_search("optuna", None, get_space("cnn_wide"), max_epochs=10, seed=0, brackets=2).scheduler
    assert [bracket._rungs[-1][0] for bracket in asha._brackets] == [1, 3]  # each bracket's first milestone


def test_min_epochs_is_ashas_grace_period_and_bohbs_first_rung() -> None:
    bohb = make_search("bohb", None, get_space("cnn_wide"), max_epochs=12, seed=0, min_epochs=3).scheduler
    assert bohb._eta == 4 and bohb_first_rung(12, bohb._eta) == 3  # the main job's: brackets start at 3 and 12
    asha = make_search("optuna", None, get_space("cnn_wide"), max_epochs=9, seed=0, min_epochs=3).scheduler
    assert [bracket._rungs[-1][0] for bracket in asha._brackets] == [3]  # its first milestone


@pytest.mark.parametrize("searcher", ["hyperopt", "optuna", "bohb"])
def test_every_value_a_searcher_suggests_is_one_the_space_has(searcher: str) -> None:
    """qrandint(50, 350, 50) is 50, 100, ..., 350 for every searcher (BOHB's Ray conversion gave 173, never 350);
    randint(1, 4) is 1, 2 or 3."""
    space = get_space("mlp_kerastuner")
    plan = make_search(searcher, None, space, max_epochs=4, seed=1)
    suggestions = [cfg.normalize(plan.search_alg.suggest(f"trial{i}")) for i in range(40)]
    for key in ("num_layers", "units_1", "units_2", "units_3"):
        drawn = {suggestion[key] for suggestion in suggestions if key in suggestion}
        assert drawn <= set(space.values_of(key)), (key, sorted(drawn))
    assert 350 in {s[key] for s in suggestions for key in ("units_1", "units_2", "units_3") if key in s}  # upper end


def _suggestions(searcher: str, space: SearchSpace, count: int, **options: object) -> list[dict]:
    """``count`` suggestions, each told back with a result (so TPE and BOHB model them), normalised."""
    plan = make_search(searcher, "fifo" if searcher != "bohb" else None, space, max_epochs=4, seed=3, **options)
    suggestions = []
    for i in range(count):
        suggestion = cfg.normalize(plan.search_alg.suggest(f"t{i}"))
        plan.search_alg.on_trial_complete(f"t{i}", {METRIC: 0.5 + 0.01 * (i % 7), "training_iteration": 4})
        suggestions.append(suggestion)
    return suggestions


@pytest.mark.parametrize("searcher", ["hyperopt", "optuna", "bohb"])
@pytest.mark.parametrize("space", ["mlp_hyperas", "mlp_kerastuner"])
def test_a_searcher_suggests_a_conditional_key_exactly_when_its_config_uses_it(searcher: str, space: str) -> None:
    """Each searcher gets the space's conditions in its own form (nested hp.choice, define-by-run, ConfigSpace
    conditions): no units_3 at two layers, no lr_sgd under Adam, past the random start-up trials too."""
    chosen = get_space(space)
    constants = make_search(searcher, None, chosen, max_epochs=4, seed=3).param_space
    suggestions = _suggestions(searcher, chosen, 30)
    for suggestion in suggestions:
        config = {**constants, **suggestion}
        assert set(suggestion) == {key for key in searched(chosen.params) if cfg.is_used(key, config)}, suggestion
    for key, condition in chosen.conditions.items():  # every branch is explored: each parent value turns up
        assert {s[condition.parent] for s in suggestions} == set(chosen.values_of(condition.parent)), key


@pytest.mark.parametrize("searcher", ["hyperopt", "optuna", "bohb"])
def test_the_flat_form_suggests_every_key_every_time(searcher: str) -> None:
    """What the benchmark compares against (``conditional=False``): the searchers before conditions."""
    space = get_space("mlp_kerastuner")
    for suggestion in _suggestions(searcher, space, 5, conditional=False):
        assert set(suggestion) == set(searched(space.params))


CONDITIONAL_POINTS = SearchSpace(
    "conditional_points", {"model": "mlp", "num_layers": tune.randint(1, 3), "units_1": tune.qrandint(8, 32, 8),
                           "units_2": tune.choice([16, 64]), "optimizer": tune.choice(["adam", "sgd"]),
                           "lr_sgd": tune.loguniform(1e-3, 0.1), "dropout": tune.uniform(0.0, 0.5)},
    "test", points_to_evaluate=[{"num_layers": 1, "units_1": 32, "optimizer": "sgd", "lr_sgd": 0.05, "dropout": 0.1},
                                {"num_layers": 2, "units_1": 8, "units_2": 64, "optimizer": "adam", "dropout": 0.2,
                                 "lr_sgd": 0.01}],  # lr_sgd under adam: unused, so left out
)  # fmt: skip


@pytest.mark.parametrize("searcher", ["hyperopt", "optuna", "bohb"])
def test_points_to_evaluate_come_first_without_their_unused_keys(searcher: str) -> None:
    """...and the searcher goes on past its random start-up trials (hyperopt's 20: its TPE reads every key of
    every finished trial, the points' too)."""
    first, second, *rest = _suggestions(searcher, CONDITIONAL_POINTS, 26)
    assert first == CONDITIONAL_POINTS.points_to_evaluate[0]
    assert second == {k: v for k, v in CONDITIONAL_POINTS.points_to_evaluate[1].items() if k != "lr_sgd"}
    assert len(rest) == 24 and all(set(s) >= {"num_layers", "units_1", "optimizer", "dropout"} for s in rest)


@pytest.mark.parametrize("searcher", ["hyperopt", "optuna", "bohb"])
def test_a_point_that_leaves_out_an_unused_key_works_in_the_flat_form(searcher: str) -> None:
    """The flat form draws every key, so it is given a value for the key the point leaves out (one it ignores)."""
    first, *_ = _suggestions(searcher, CONDITIONAL_POINTS, 3, conditional=False)
    point = CONDITIONAL_POINTS.points_to_evaluate[0]
    assert {k: v for k, v in first.items() if k != "units_2"} == point and first["units_2"] in (16, 64)

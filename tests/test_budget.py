"""Fitting a search to a time budget: FLOP counts, the plan's choices, restricted spaces (no Ray, no timing:
the machine's speed is given as a number, so every choice below is exact arithmetic)."""

from __future__ import annotations

import json

import pytest
from ray import tune

from rtune_fashion import budget
from rtune_fashion.errors import ExperimentError, SearchSpaceError
from rtune_fashion.models import forward_flops, preset
from rtune_fashion.spaces import SearchSpace, get_space, validate

# A 2-layer MLP space: 64 / 256 / 4096 units. Forward FLOPs: 2*(784*u + u*u + u*10).
MLP = SearchSpace(
    name="test_budget_mlp",
    source="tests",
    params={"model": "mlp", "num_layers": 2, "units": tune.choice([64, 256, 4096]),
            "learning_rate": tune.loguniform(1e-4, 1e-2), "batch_size": tune.choice([64, 256])},
    points_to_evaluate=[{"units": 4096, "learning_rate": 1e-3, "batch_size": 64},
                        {"units": 256, "learning_rate": 1e-3, "batch_size": 256}],
)  # fmt: skip
# The same with 256 units only: nothing for a budget to leave out, so every size below is the typical config's.
MLP_256 = SearchSpace(name="test_budget_mlp_256", source="tests",
                      params={**MLP.params, "units": 256}, points_to_evaluate=[])  # fmt: skip
TYPICAL_FLOPS = 2 * (784 * 256 + 256 * 256 + 256 * 10)
FLOPS_64 = 2 * (784 * 64 + 64 * 64 + 64 * 10)
# 10,000 training images/s and 33,333 evaluated images/s for the typical (256-unit) config, 2 s to compile.
SPEED = budget.Speed(flops=TYPICAL_FLOPS, train_s_per_example=1e-4, eval_s_per_example=3e-5, first_epoch_extra_s=2.0)


def _request(budget_s: float, **overrides) -> budget.Request:
    values = {"budget_s": budget_s, "elapsed_s": 20.0, "max_epochs": 9, "slots": 2, "full_train": 48000,
              "full_val": 12000, **overrides}  # fmt: skip
    return budget.Request(**values)


def test_forward_flops_of_lenet_counted_by_hand() -> None:
    conv1 = 2 * 28 * 28 * 8 * 3 * 3 * 1  # 8 filters 3x3 same on 28x28x1
    conv2 = 2 * 10 * 10 * 16 * 5 * 5 * 8  # 16 filters 5x5 valid on 14x14x8 -> 10x10
    dense = 2 * (5 * 5 * 16 * 120 + 120 * 84 + 84 * 10)
    assert forward_flops(preset("lenet")) == conv1 + conv2 + dense


def test_forward_flops_of_an_mlp_and_of_a_two_class_output() -> None:
    config = {"model": "mlp", "num_layers": 2, "units": 256}
    assert forward_flops(config) == TYPICAL_FLOPS
    assert forward_flops(config, (8,), 2) == 2 * (8 * 256 + 256 * 256 + 256 * 1)  # one sigmoid unit


def test_typical_config_is_the_median_cost_of_the_space() -> None:
    assert budget.typical_config(MLP, (28, 28, 1), 10)["units"] == 256


def test_a_generous_budget_takes_all_the_data_and_drops_what_no_budget_affords() -> None:
    plan, space = budget.make_plan(_request(600), MLP, SPEED, (28, 28, 1), 10)
    # typical epoch at 48,000 + 12,000: 4.8 + 0.36 s; kept for the final model: 9 epochs x 4.8 s
    assert plan.train_size == 48000 and plan.val_size == 12000
    assert plan.final_reserve_s == pytest.approx(43.2)
    assert plan.search_s == pytest.approx(600 - 20 - 43.2)
    assert plan.typical_epoch_s == pytest.approx(5.16)
    assert plan.training_share() == pytest.approx(4.8 / 5.16)  # what the final model's prediction scales
    # affordable epochs / ASHA's 2.33 epochs per trial at 9 epochs (rungs 1 and 3: 1 + 2/3 + 6/9)
    assert plan.num_samples == int(plan.search_s * 2 / 5.16 / (1 + 2 / 3 + 6 / 9))
    # 4096 units cost 75x the typical config: an epoch far above 3x what the budget affords per epoch
    assert plan.dropped == {"units": [4096]}
    assert space.values_of("units") == [64, 256] and space.name == MLP.name
    assert space.points_to_evaluate == [{"units": 256, "learning_rate": 1e-3, "batch_size": 256}]
    validate(space)


def test_a_short_budget_takes_a_smaller_subset_and_fewer_trials() -> None:
    plan, _ = budget.make_plan(_request(60), MLP_256, SPEED, (28, 28, 1), 10)
    # kept for the final model: 55% of the 40 s left after start-up; the search's 18 s x 2 slots afford
    # fewer than 10 trials x 2.33 epochs at 48,000 and 24,000 images, 26.1 epochs at 12,000 (1.38 s each)
    assert plan.final_reserve_s == pytest.approx(22.0) and plan.search_s == pytest.approx(18.0)
    assert (plan.train_size, plan.val_size, plan.full_train_size) == (12000, 6000, 48000)
    assert plan.num_samples == 11  # 26.1 affordable epochs / 2.33 per trial
    tight, _ = budget.make_plan(_request(60, elapsed_s=50, slots=1), MLP_256, SPEED, (28, 28, 1), 10)
    assert (tight.train_size, tight.num_samples) == (3000, 10)  # 10: the floor, the script's count
    assert tight.final_reserve_s == pytest.approx(5.5)  # a share of what is left, never more than is left
    assert plan.cheapest_first_epoch_s < plan.search_s


def test_after_leaving_values_out_the_sizes_are_fitted_to_the_configs_left() -> None:
    """The 60-s budget leaves 256 and 4096 units out (below); the search then draws 64-unit configs only, at
    0.204x the whole space's typical cost: the final model keeps 9 of their epochs on 48,000 images (8.8 s),
    and the search's 31.2 s x 2 slots afford 59 of their epochs on all the data (1.05 s each)."""
    plan, _ = budget.make_plan(_request(60), MLP, SPEED, (28, 28, 1), 10)
    kept = FLOPS_64 / TYPICAL_FLOPS
    assert plan.dropped == {"units": [256, 4096]} and plan.speed["kept_typical_flops"] == FLOPS_64
    assert plan.final_reserve_s == pytest.approx(9 * 4.8 * kept) and plan.search_s == pytest.approx(40 - 9 * 4.8 * kept)
    assert (plan.train_size, plan.val_size) == (48000, 12000)
    assert plan.typical_epoch_s == pytest.approx((4.8 + 0.36) * kept)
    assert plan.num_samples == int(plan.search_s * 2 / plan.typical_epoch_s / (1 + 2 / 3 + 6 / 9))


def test_a_subset_whose_first_epoch_outlasts_the_search_gives_way_to_a_smaller_one() -> None:
    """7 s of compilation, 36 s in all: the configs left (64 units) afford 24,000 images on average, but the
    cheapest first epoch there outlasts the 7.2-s search; on 6,000 images it fits (7.14 s), so the plan takes
    6,000 rather than refusing a budget that fits."""
    slow_start = budget.Speed(flops=TYPICAL_FLOPS, train_s_per_example=1e-4, eval_s_per_example=3e-5,
                              first_epoch_extra_s=7.0)  # fmt: skip
    plan, _ = budget.make_plan(_request(36), MLP, slow_start, (28, 28, 1), 10)
    assert plan.dropped == {"units": [256, 4096]} and plan.train_size == 6000
    assert plan.search_s == pytest.approx(7.2) and plan.cheapest_first_epoch_s == pytest.approx(7.14, abs=0.01)


def test_without_a_final_model_nothing_is_kept_for_it_and_nothing_left_out_for_it() -> None:
    """--no-retrain (final_trainings 0): the search has all the time after start-up, and no value is left
    out for a retraining that never happens (one training keeps 22 s and leaves 256 units out, above)."""
    plan, space = budget.make_plan(_request(60, final_trainings=0), MLP, SPEED, (28, 28, 1), 10)
    assert plan.final_reserve_s == 0 and plan.search_s == pytest.approx(40) and plan.final_trainings == 0
    assert plan.dropped == {"units": [4096]} and space.values_of("units") == [64, 256]
    assert "; no final model (--no-retrain): the search has all the time." in budget.describe_plan(plan, 1, 0)


def test_values_the_final_model_could_not_retrain_on_all_the_data_are_left_out() -> None:
    """The 60-s budget's final model has 22 s for 9 epochs on 48,000 images (2.4 s each): only the 64-unit
    config fits (the 256-unit one needs 4.8 s an epoch there), although the search could afford 256."""
    plan, space = budget.make_plan(_request(60), MLP, SPEED, (28, 28, 1), 10)
    assert plan.dropped == {"units": [256, 4096]} and space.params["units"] == 64
    roomy, _ = budget.make_plan(_request(60, max_epochs=3), MLP, SPEED, (28, 28, 1), 10)
    assert roomy.dropped == {"units": [4096]}  # 3 epochs of 256 units need 14.4 s of the 22 s its share allows


def test_an_ensemble_planned_keeps_room_for_each_of_its_trainings() -> None:
    """Two trainings on all the data: twice the reserve where the share allows it (600 s: 2 x 9 epochs x
    4.8 s), and values left out that one training could have afforded (3 epochs of 256 units: 14.4 s, but
    each of the two trainings has 11 s of the 22 s share)."""
    generous, _ = budget.make_plan(_request(600, final_trainings=2), MLP, SPEED, (28, 28, 1), 10)
    assert generous.final_reserve_s == pytest.approx(2 * 43.2) and generous.final_trainings == 2
    assert "retrained on all 48000 training images 2 times, an ensemble," in budget.describe_plan(generous, 1, 0)
    roomy, _ = budget.make_plan(_request(60, max_epochs=3, final_trainings=2), MLP, SPEED, (28, 28, 1), 10)
    assert roomy.dropped == {"units": [256, 4096]}
    assert roomy.final_reserve_s == pytest.approx(2 * 3 * 4.8 * FLOPS_64 / TYPICAL_FLOPS)  # the configs left


def test_what_the_user_fixed_is_kept() -> None:
    plan, _ = budget.make_plan(_request(60, train_size=48000, val_size=500, num_samples=4), MLP, SPEED, (28, 28, 1), 10)
    assert (plan.train_size, plan.val_size, plan.num_samples) == (48000, 500, 4)


def test_all_the_data_is_the_first_candidate_and_fifo_plans_whole_trials() -> None:
    plan, _ = budget.make_plan(_request(600, full_train=5000, full_val=1000), MLP, SPEED, (28, 28, 1), 10)
    assert (plan.train_size, plan.val_size) == (5000, 1000)  # a dataset smaller than the ladder's top
    fifo, _ = budget.make_plan(_request(60, scheduler="fifo"), MLP_256, SPEED, (28, 28, 1), 10)
    assert fifo.epochs_wanted == 10 * 9  # every trial runs all 9 epochs
    # 90 epochs of the typical config fit in 18 s x 2 slots at 3,000 images (0.36 s each), not at 6,000
    # (0.69 s), while the same budget with early stopping (23.3 epochs wanted) takes 12,000
    assert fifo.train_size == 3000


@pytest.mark.parametrize(
    ("choice", "trial_s", "left", "expected"),
    [
        # its trial trained 30 s on 6,000 images: all 48,000 need 240 s
        ("auto", 30.0, 300.0, ("retrained", 48000, "its trial trained for 30 s on 6000 images, about 240 s on 48000; "
                                                   "300 s were left")),
        ("auto", 30.0, float("inf"), ("retrained", 48000, "its trial trained for 30 s on 6000 images, about 240 s on "
                                                          "48000")),
        ("auto", 30.0, 100.0, ("retrained", 12000, "its trial trained for 30 s on 6000 images, about 60 s on 12000; "
                                                   "100 s were left")),  # 24,000 would need 120 s
        ("auto", 30.0, 40.0, ("retrained", 6000, "its trial trained for 30 s on 6000 images; 40 s were left")),
        ("auto", 300.0, 100.0, ("checkpoint", None, "retraining would take about 300 s; 100 s were left")),
        ("auto", 300.0, -5.0, ("checkpoint", None, "retraining would take about 300 s; 0 s were left")),
        ("retrain", 300.0, 100.0, ("retrained", 6000, "--final-model retrain (about 300 s; 100 s were left)")),
        ("retrain", 30.0, 100.0, ("retrained", 12000, "--final-model retrain; its trial trained for 30 s on 6000 "
                                                      "images, about 60 s on 12000; 100 s were left")),
        ("checkpoint", 1.0, 100.0, ("checkpoint", None, "--final-model checkpoint")),
    ],
)
def test_the_final_model_retrains_on_the_most_images_that_fit_in_the_time_left(choice, trial_s, left,
                                                                                expected) -> None:  # fmt: skip
    made = budget.final_model_choice(choice, trial_s, 6000, 48000, left)
    assert (made.source, made.train_size, made.why) == expected


# The main job with --seed 1 on two slow cores (docs/MEASURED.md): the best trial (wide, 5x5, stopped after 8
# epochs) could be retrained on 12,000 of 48,000 images in the 429 s left; the runner-up (12 epochs, 0.0017
# below it), on all of them.
def _contender(trial_id: str, val: float, train_s: float, *, epochs: int = 12,
               overhead_s: float = 12.0) -> budget.Contender:  # fmt: skip
    return budget.Contender(trial_id, val, epochs, train_s, overhead_s)


SEED_1 = [_contender("7473a6d5", 0.8920, 119.0, epochs=8, overhead_s=25.0), _contender("5fb9f5fc", 0.8903, 31.0),
          _contender("87e528f1", 0.8880, 100.0, overhead_s=20.0)]  # fmt: skip


def test_a_config_almost_as_good_is_retrained_on_all_the_data_when_only_it_fits() -> None:
    chosen, made = budget.choose_final("auto", SEED_1, 6000, 48000, 429.0)
    assert chosen.trial_id == "5fb9f5fc" and (made.source, made.train_size) == ("retrained", 48000)
    assert made.why == ("the best trial 7473a6d5 (val 0.8920) could be retrained on 12000 images only; trial 5fb9f5fc "
                        "(val 0.8903, within 0.005) trained for 31 s on 6000 images, about 248 s on 48000; 417 s "
                        "were left")  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "ranked", "search_train", "left", "expected"),
    [
        ("auto", SEED_1, 6000, 2000.0, ("7473a6d5", 48000)),  # the best fits all the data: it is the one
        ("auto", SEED_1, 6000, 600.0, ("5fb9f5fc", 48000)),  # the best on half the data: twice is worth more
        ("auto", SEED_1, 30000, 180.0, ("7473a6d5", 30000)),  # on more than half: not worth a worse config
        ("auto", [SEED_1[0], _contender("b", 0.8869, 31.0)], 6000, 429.0, ("7473a6d5", 12000)),  # 0.0051 below
        ("auto", [SEED_1[0], _contender("b", 0.8990, 13.0, epochs=5)], 6000, 429.0, ("7473a6d5", 12000)),  # peaked soon
        ("auto", [SEED_1[0], _contender("b", 0.8910, 31.0, epochs=3)], 6000, 429.0, ("7473a6d5", 12000)),  # stopped
        ("auto", SEED_1, 6000, 200.0, ("7473a6d5", 6000)),  # the runner-up's 248 s do not fit either
        ("auto", SEED_1, 48000, 100.0, ("7473a6d5", None)),  # no subset: no more data for anyone, its checkpoint
        ("retrain", SEED_1, 6000, 429.0, ("7473a6d5", 12000)),  # asked for the best, retrained
        ("checkpoint", SEED_1, 6000, 429.0, ("7473a6d5", None)),
        ("auto", SEED_1[:1], 6000, 429.0, ("7473a6d5", 12000)),  # nobody else
    ],
)
def test_the_best_trial_stays_the_final_model_unless_a_close_one_fits_all_the_data(choice, ranked, search_train,
                                                                                   left, expected) -> None:  # fmt: skip
    chosen, made = budget.choose_final(choice, ranked, search_train, 48000, left)
    assert (chosen.trial_id, made.train_size) == expected


def test_when_the_best_cannot_be_retrained_at_all_a_close_one_that_fits_is_not_its_checkpoint() -> None:
    slow = [_contender("a", 0.90, 300.0, overhead_s=10.0), _contender("b", 0.897, 20.0, overhead_s=10.0)]
    chosen, made = budget.choose_final("auto", slow, 6000, 48000, 200.0)
    assert chosen.trial_id == "b" and "could be retrained not at all (its checkpoint would be" in made.why


def test_without_a_subset_the_final_model_retrains_on_the_search_data() -> None:
    made = budget.final_model_choice("auto", 30.0, 5000, 5000, 31.0)
    assert (made.source, made.train_size, made.why) == ("retrained", 5000, "its trial trained for 30 s on 5000 "
                                                                            "images; 31 s were left")  # fmt: skip


def test_a_budget_shorter_than_one_first_epoch_is_refused_with_the_fix() -> None:
    with pytest.raises(ExperimentError) as caught:
        budget.make_plan(_request(10, elapsed_s=9), MLP, SPEED, (28, 28, 1), 10)
    message = str(caught.value)
    assert message.startswith("--time-budget 10 s cannot fit a single epoch here: after 9 s of start-up")
    assert "test_budget_mlp" in message and "first epoch on 3000 images" in message
    assert "Fix: --time-budget " in message and "or a smaller --train-size" in message


def test_cheapest_values_are_the_smallest_architecture_and_the_largest_batch() -> None:
    space = get_space("cnn_wide")
    keep = budget.cheapest_values(space)
    assert keep == {"num_blocks": [2], "convs_per_block": [1], "filters": [16], "kernel_size": [3],
                    "batch_norm": [False], "num_dense": [1], "dense_units": [64], "batch_size": [256],
                    "augment_flip": [False], "augment_translate": [0.0]}  # fmt: skip
    smallest = space.restricted(keep)
    validate(smallest)
    assert smallest.params["filters"] == 16 and smallest.params["batch_size"] == 256  # constants now
    assert smallest.points_to_evaluate == []  # the warm start (32 filters) is outside


def test_values_of_integer_domains_and_refusals() -> None:
    space = get_space("mlp_kerastuner")
    assert space.values_of("num_layers") == [1, 2, 3]  # randint's upper end is exclusive
    assert space.values_of("units_1") == [50, 100, 150, 200, 250, 300, 350]  # qrandint's is inclusive
    quantized = SearchSpace("q", {"model": "mlp", "units": tune.qrandint(25, 150, 50)}, "tests")
    assert quantized.values_of("units") == [50, 100, 150]  # multiples of q, as Ray draws them
    assert MLP.without({"units": [64, 4096]}).params["units"] == 256  # one value left: a constant
    assert space.values_of("batch_size") == [32]
    with pytest.raises(SearchSpaceError, match="'learning_rate' of space 'mlp_wide' is continuous"):
        get_space("mlp_wide").values_of("learning_rate")
    with pytest.raises(SearchSpaceError, match=r"Restricting 'units' of space 'test_budget_mlp' to \[8\] leaves no"):
        MLP.restricted({"units": [8]})


def test_values_are_dropped_where_costs_compound_until_most_configs_fit() -> None:
    """cnn_wide's costliest configs combine 64 filters, 5x5 kernels, 2 convs and 3 blocks: judged on the
    configs they appear in, values go until 90% of the space's draws fit the cap."""
    space = get_space("cnn_wide")
    ranked = budget.by_cost(budget.sample_configs(space), (28, 28, 1), 10)
    flops = [f for f, _ in ranked]
    speed = budget.Speed(flops=flops[len(flops) // 2], train_s_per_example=1e-3, eval_s_per_example=3e-4,
                         first_epoch_extra_s=2.0)  # fmt: skip
    typical_epoch = speed.epoch_s(flops[len(flops) // 2], 3000, 2000)
    dropped = budget.too_expensive(space, ranked, speed, 1.5 * typical_epoch, 3000, 2000)
    kept = [(f, c) for f, c in ranked if all(c[k] not in values for k, values in dropped.items())]
    assert dropped and kept
    assert sum(speed.epoch_s(f, 3000, 2000) <= 1.5 * typical_epoch for f, _ in kept) >= 0.9 * len(kept)
    assert all(len(space.values_of(k)) > len(v) for k, v in dropped.items())  # every key keeps a value
    assert budget.too_expensive(space, ranked, speed, 100 * typical_epoch, 3000, 2000) == {}  # all fit


def test_a_plan_survives_settings_json_for_a_resumed_search() -> None:
    plan, _ = budget.make_plan(_request(60), MLP, SPEED, (28, 28, 1), 10)
    stored = json.loads(json.dumps(plan.to_dict()))  # as settings.json keeps it
    assert budget.Plan.from_dict(stored) == plan
    del stored["full_train_size"]  # a plan stored before the final model could take all the data
    assert budget.Plan.from_dict(stored).full_train_size == plan.train_size


def test_the_subset_ladder_halves_from_any_dataset_s_size() -> None:
    assert budget.train_sizes(48_000) == [48_000, 24_000, 12_000, 6_000, 3_000]  # Fashion-MNIST's, as before
    assert budget.train_sizes(500_000)[:3] == [500_000, 250_000, 125_000]  # no jump from all to 48,000
    assert budget.train_sizes(6_857) == [6_857, 3_428] and budget.train_sizes(2_000) == [2_000]

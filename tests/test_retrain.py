"""The final step: one config trained from scratch, or several times as an ensemble, and tested once."""

from __future__ import annotations

import math
import runpy
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from rtune_fashion import retrain
from rtune_fashion.models import average_of, build_model
from rtune_fashion.retrain import train_and_test
from tests.conftest import synthetic_data

MLP = {"model": "mlp", "num_layers": 1, "units": 16, "optimizer": "adam", "learning_rate": 1e-2, "batch_size": 16}


def test_an_ensemble_predicts_its_members_mean_and_saves_as_one_file(tmp_path: Path) -> None:
    data = synthetic_data()
    members = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        members.append(build_model(MLP, data.input_shape, data.num_classes))
    ensemble = average_of(members)
    expected = np.mean([m.predict(data.x_val, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(data.x_val, verbose=0), expected, rtol=1e-5, atol=1e-6)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.predict(data.x_val, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert loaded.evaluate(data.x_val, data.y_val, verbose=0)[1] == pytest.approx(
        float(np.mean(expected.argmax(1) == data.y_val)))
    assert average_of(members[:1]) is members[0]  # one member is the model itself


def test_members_train_with_consecutive_seeds_and_only_the_ensemble_is_tested(tmp_path: Path) -> None:
    data = synthetic_data()
    model, outcome = train_and_test(MLP, data, epochs=1, seed=5, validate_each_epoch=False, max_members=3)
    assert (outcome["members"], outcome["member_seeds"]) == (3, [5, 6, 7])
    assert len(outcome["member_val_accuracy"]) == 3 and model.name == "ensemble"
    # The first member is exactly what a single training with that seed makes.
    single, alone = train_and_test(MLP, data, epochs=1, seed=5, validate_each_epoch=False)
    assert alone["members"] == 1 and alone["val_accuracy"] == pytest.approx(outcome["member_val_accuracy"][0])
    np.testing.assert_array_equal(single.get_weights()[0], model.get_layer("member_0").get_weights()[0])
    assert outcome["val_accuracy"] == pytest.approx(model.evaluate(data.x_val, data.y_val, verbose=0)[1])


def test_no_second_member_when_the_time_left_would_not_hold_it() -> None:
    _, outcome = train_and_test(MLP, synthetic_data(), epochs=1, seed=0, validate_each_epoch=False, max_members=3,
                                deadline=time.time())  # fmt: skip
    assert (outcome["members"], outcome["member_seeds"]) == (1, [0])


def test_a_member_that_runs_past_the_deadline_is_dropped_after_an_epoch(monkeypatch) -> None:
    monkeypatch.setattr(retrain, "_next_member_epochs", lambda *args: 3)  # the second member starts anyway
    model, outcome = train_and_test(MLP, synthetic_data(), epochs=3, seed=0, validate_each_epoch=False,
                                    max_members=3, deadline=time.time())  # fmt: skip
    assert outcome["members"] == 1 and model.name == "mlp"  # the first training alone is the final model
    assert outcome["train_time_s"] > outcome["member_train_time_s"][0]  # the dropped training's time counts


def test_the_deadline_guard_stops_a_member_whose_pace_would_end_too_late() -> None:
    ten_s_per_epoch = time.perf_counter() - 10.0  # one epoch done, 10 s after it started
    late = retrain._deadline_guard(time.time() + 35.0, 5, ten_s_per_epoch, after_s=0.0)  # 4 epochs left: 40 s
    with pytest.raises(retrain._OutOfTime):
        late(1, {}, None)
    retrain._deadline_guard(time.time() + 60.0, 5, ten_s_per_epoch, after_s=10.0)(1, {}, None)  # 50 s: fits


@pytest.mark.parametrize(
    ("members", "left_s", "epochs"),
    [
        (1, 94.0, 9),  # 9 epochs of 10 s (the last member's pace) + 1 validation + 2 x (1 + 0.5) evaluating
        (1, 93.9, 8),  # one epoch fewer fits
        (1, 64.0, 6),  # 6 of 9: the fewest a member may train (MIN_MEMBER_SHARE)
        (1, 63.9, 0),
        (2, 95.5, 9),  # 90 + 1 + 3 x 1.5
        (3, math.inf, 0),  # the most asked for
        (1, math.inf, 9),  # no deadline
    ],
)
def test_another_member_trains_as_many_of_the_epochs_as_fit_or_none(members: int, left_s: float,
                                                                       epochs: int) -> None:  # fmt: skip
    assert retrain._next_member_epochs(members, 3, 9, 10.0, 1.0, 0.5, left_s) == epochs


def test_a_later_member_may_train_fewer_epochs_on_a_schedule_shortened_alike(monkeypatch) -> None:
    calls = []
    real_fit_epochs = retrain.fit_epochs

    def recording(model, config, data, **kwargs):
        calls.append((kwargs["end_epoch"], kwargs["schedule_epochs"]))
        return real_fit_epochs(model, config, data, **kwargs)

    monkeypatch.setattr(retrain, "fit_epochs", recording)
    fitting = iter([2, 0])  # after the first member, 2 of its 3 epochs fit; after the second, none
    monkeypatch.setattr(retrain, "_next_member_epochs", lambda *args: next(fitting))
    model, outcome = train_and_test({**MLP, "lr_schedule": "cosine"}, synthetic_data(), epochs=3, seed=0,
                                    schedule_epochs=6, validate_each_epoch=False, max_members=3)  # fmt: skip
    assert calls == [(3, 6), (2, 4)]  # the cosine of the second ends where the first one's did: half-way
    assert (outcome["members"], outcome["member_epochs"], outcome["epochs"]) == (2, [3, 2], 3)
    assert model.name == "ensemble"


def test_the_ensemble_benchmark_prints_each_training_and_each_average(monkeypatch, capsys) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench_ensemble.py"
    monkeypatch.setattr("sys.argv", [str(script), "--train-size", "300", "--epochs", "1", "--members", "2",
                                     "--preset", "baseline_softmax"])  # fmt: skip
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "300 training images, 1 epochs, 2 trainings" in out
    assert "alone; first 1 averaged: val " in out and "alone; first 2 averaged: val " in out
    monkeypatch.setattr("sys.argv", [str(script), "--train-size", "300", "--member-epochs", "2", "1", "1",
                                     "--preset", "baseline_softmax"])  # fmt: skip
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "300 training images, [2, 1, 1] epochs, 3 trainings" in out and "(2 epochs): val " in out
    assert "(1 epochs): val " in out and "first 3 averaged: val " in out and "; with the first alone: val " in out


def test_the_final_model_line_names_the_config_when_it_is_not_the_best_trial_s() -> None:
    from rtune_fashion.results import final_model_line

    final = {"source": "retrained", "epochs": 12, "train_size": 48000, "train_accuracy": 0.93, "val_accuracy": 0.92,
             "test_accuracy": 0.91, "trial_id": "b", "why": "the best trial a (val 0.9000) could be retrained on "
             "12000 images only; ..."}  # fmt: skip
    accuracies = ": train 0.9300, val 0.9200, test 0.9100"
    assert final_model_line(final, "a") == ("Retrained for 12 epochs on 48000 images (trial b's config, not the best "
                                            "trial's: it could be retrained on all the data)" + accuracies)
    assert final_model_line(final, "b") == "Retrained for 12 epochs on 48000 images" + accuracies
    ensemble = {**final, "members": 2, "member_seeds": [4, 5], "member_epochs": [12, 9]}
    assert final_model_line(ensemble, "b") == ("Retrained for 12 epochs on 48000 images, 2 times (an ensemble of "
                                               "seeds [4, 5], for [12, 9] epochs): val 0.9200, test 0.9100")


def test_the_final_step_retrains_the_close_trial_s_config_for_its_epochs_and_says_so(ray_local, tmp_path) -> None:
    """experiment._final_model with two trials: the best one's retraining fits no training set in the time left
    (its measured 300 s), the other's, 0.002 below it, fits all 64 images: that config is retrained, for its
    own epochs and with its own seed, on all of them, and the summary names it."""
    from rtune_fashion import budget
    from rtune_fashion.experiment import ExperimentSettings, _final_model
    from rtune_fashion.trainable import trial_seed

    data = synthetic_data()
    plan = budget.Plan(budget_s=600, search_s=300, final_reserve_s=200, slots=1, train_size=16, val_size=8,
                       full_train_size=64, num_samples=2, epochs_wanted=2, typical_epoch_s=1.0,
                       cheapest_first_epoch_s=1.0,
                       speed={"train_s_per_example": 1e-3, "eval_s_per_example": 1e-3})  # fmt: skip

    def trial(trial_id: str, val: float, seconds: float, epochs: int, units: int, best_epoch: int) -> dict:
        config = {**MLP, "units": units}
        return {"trial_id": trial_id, "val_accuracy": val, "last_val_accuracy": val, "last_accuracy": val,
                "epochs": epochs, "best_epoch": best_epoch, "trial_time_s": seconds, "config": config,
                "raw_config": config}  # fmt: skip

    # "close" peaked at epoch 2 of its 3: it is retrained for 2, the epochs of the val accuracy it was ranked by
    ranked = [trial("best", 0.900, 300.0, 1, 16, 1), trial("close", 0.898, 0.3, 3, 8, 2)]
    settings = ExperimentSettings(space="mlp_hyperas", searcher="random", storage=str(tmp_path), name="final",
                                  ensemble=1, cpus_per_trial=1, gpus_per_trial=0)  # as run_experiment resolves them
    settings.experiment_dir.mkdir(parents=True)
    lines: list[str] = []
    final = _final_model(settings, ranked, data, [], time.time() + 120, in_driver=True, plan=plan, echo=lines.append)
    assert (final["source"], final["trial_id"], final["train_size"], final["epochs"]) == ("retrained", "close", 64, 2)
    assert final["member_seeds"] == [trial_seed(settings.seed, ranked[1]["raw_config"])]
    assert final["config"] == ranked[1]["config"]
    assert final["why"].startswith("the best trial best (val 0.9000) could be retrained not at all")
    assert lines[0].startswith("Final model: trial close's config retrained on 64 images for 2 epochs, where its "
                               "val accuracy peaked (the best")  # fmt: skip
    assert (settings.experiment_dir / "best_model.keras").stat().st_size > 0


def test_trained_models_join_the_best_only_when_they_raise_its_val_accuracy(small_data) -> None:
    """The final model from checkpoints: the next trials' models join the best one's in rank order, each only if
    the ensemble's val accuracy rises (an untrained model never does), up to the limit; test is read once."""
    def trained(seed: int, epochs: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = build_model({**MLP, "units": 64}, small_data.input_shape, small_data.num_classes)
        model.fit(small_data.x_train, small_data.y_train, epochs=epochs, batch_size=32, verbose=0)
        return model

    def alone(model: keras.Model) -> float:
        return float(np.mean(model.predict(small_data.x_val, verbose=0).argmax(1) == small_data.y_val))

    best, untrained = trained(0, 8), trained(5, 0)
    others = [trained(seed, 8) for seed in (1, 2, 3)]
    loaded: list[int] = []

    def loader(i: int, model: keras.Model):
        return lambda: loaded.append(i) or model

    candidates = [loader(1, untrained), *(loader(i, m) for i, m in enumerate(others, start=2))]
    model, outcome = retrain.ensemble_of_trained(best, candidates, small_data, batch_size=32, max_members=3)
    assert 1 not in outcome["member_index"] and outcome["member_index"][0] == 0
    assert 2 <= outcome["members"] == len(outcome["member_index"]) <= 3  # here 0.763 alone, 0.807 with trial 2's
    assert outcome["val_accuracy"] > alone(best) and outcome["member_val_accuracy"][0] == pytest.approx(alone(best))
    assert outcome["test_accuracy"] == pytest.approx(model.evaluate(small_data.x_test, small_data.y_test,
                                                                    verbose=0)[1])  # fmt: skip

    loaded.clear()
    _, late = retrain.ensemble_of_trained(best, candidates, small_data, batch_size=32, max_members=3,
                                          deadline=time.time() - 1)  # fmt: skip
    assert late["members"] == 1 and loaded == []  # past the deadline: no candidate is even loaded

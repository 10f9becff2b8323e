"""What `tensorboard --logdir EXPERIMENT_DIR` shows, read with TensorBoard's own event reader."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from rtune_fashion.experiment import ExperimentSettings, run_experiment
from tests.conftest import ensure_ray

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tensorboard")]  # one worker: one module fixture
CURVES = ("ray/tune/loss", "ray/tune/accuracy", "ray/tune/val_loss", "ray/tune/val_accuracy")


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory) -> Path:
    ensure_ray(__name__)
    settings = ExperimentSettings(space="mlp_hyperas", searcher="hyperopt", num_samples=3, max_epochs=3, seed=1,
                                  storage=str(tmp_path_factory.mktemp("tb")), retrain=False, train_size=600,
                                  val_size=300, test_size=300)  # fmt: skip
    run_experiment(settings)
    return settings.experiment_dir


def _events(trial_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_every_trial_is_a_run_with_one_point_per_epoch(experiment_dir: Path) -> None:
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == 3
    for row in trials.itertuples():
        events = _events(experiment_dir / f"trial_{row.trial_id}")
        for tag in CURVES:
            assert [point.step for point in events.Scalars(tag)] == list(range(1, row.epochs + 1)), tag
        best_curve = [point.value for point in events.Scalars("ray/tune/best_val_accuracy")]
        assert best_curve[-1] == pytest.approx(row.best_val_accuracy)  # what HParams shows as the metric


def test_hparams_list_each_trials_hyperparameters(experiment_dir: Path) -> None:
    for trial_dir in sorted(experiment_dir.glob("trial_*")):
        content = _events(trial_dir).PluginTagToContent("hparams")
        experiment = metadata.parse_experiment_plugin_data(content["_hparams_/experiment"])
        assert "ray/tune/best_val_accuracy" in {m.name.tag for m in experiment.metric_infos}
        session = metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
        params = json.loads((trial_dir / "params.json").read_text())
        assert session.hparams["optimizer"].string_value == params["optimizer"]
        assert session.hparams["units_1"].number_value == params["units_1"]

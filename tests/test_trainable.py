"""The trainable through real Ray Tune: reports, checkpoints, resume from a checkpoint, NaN."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from ray import tune

from rtune_fashion import config as cfg
from rtune_fashion.errors import NonFiniteLossError
from rtune_fashion.models import build_model
from rtune_fashion.trainable import MODEL_FILE, STATE_FILE, train_trial, trial_seed
from rtune_fashion.training import eval_batch_size, fit_epochs, whole_batches
from tests.conftest import synthetic_data

pytestmark = pytest.mark.slow
OVERFLOW = 1e38  # float32 overflows in the first layer: the loss is NaN in epoch 1
MLP = {"model": "mlp", "num_layers": 1, "units": 16, "batch_size": 64}


def _fit(trainable, storage: Path, config: dict, max_failures: int = 0) -> tune.ResultGrid:
    tuner = tune.Tuner(
        trainable,
        param_space=config,
        run_config=tune.RunConfig(
            storage_path=str(storage),
            name="t",
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )
    return tuner.fit()


def test_every_epoch_is_reported_and_checkpointed(ray_local, small_data, tmp_path: Path) -> None:
    trainable = tune.with_parameters(train_trial, data=small_data, max_epochs=3, seed=0)
    result = _fit(trainable, tmp_path, MLP)[0]
    assert result.error is None
    history = result.metrics_dataframe
    assert history["epoch"].tolist() == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s"):
        assert np.isfinite(history[key]).all(), key
    assert history["val_accuracy"].iloc[-1] > 0.3  # 600 real images, 3 epochs: well above chance (0.1)
    assert len(result.best_checkpoints) == 2  # one per epoch, the two newest kept
    assert history["best_val_accuracy"].tolist() == history["val_accuracy"].cummax().tolist()
    with result.checkpoint.as_directory() as directory:
        state = json.loads((Path(directory) / STATE_FILE).read_text())
        assert state == {"epoch": 3, "best_val_accuracy": history["val_accuracy"].max()}
        assert (Path(directory) / MODEL_FILE).stat().st_size > 0


def crash_after_first_epoch_once(config: dict, *, data, max_epochs: int, marker: str) -> None:
    """Train one epoch and crash, the first time only (the marker file toggles the failure)."""
    if not Path(marker).exists():
        train_trial(config, data=data, max_epochs=1)
        Path(marker).touch()
        raise RuntimeError("simulated crash after epoch 1")
    train_trial(config, data=data, max_epochs=max_epochs)


def test_failed_trial_resumes_from_its_checkpoint(ray_local, small_data, tmp_path: Path) -> None:
    trainable = tune.with_parameters(
        crash_after_first_epoch_once, data=small_data, max_epochs=3, marker=str(tmp_path / "crashed")
    )
    result = _fit(trainable, tmp_path, MLP, max_failures=1)[0]
    assert result.error is None and (tmp_path / "crashed").exists()
    # One epoch before the crash, then epochs 2 and 3 from the checkpoint: epoch 1 is never trained twice.
    assert result.metrics_dataframe["epoch"].tolist() == [1, 2, 3]


def test_nan_loss_ends_the_trial_with_an_error(ray_local, tmp_path: Path) -> None:
    trainable = tune.with_parameters(train_trial, data=synthetic_data(fill=OVERFLOW), max_epochs=3)
    result = _fit(trainable, tmp_path, MLP)[0]
    assert isinstance(result.error.cause, NonFiniteLossError)  # the trial's own exception, kept by Ray
    assert re.search(r"loss is (nan|inf) at epoch 1", str(result.error))
    assert result.metrics_dataframe is None or "val_accuracy" not in result.metrics_dataframe  # nothing reported


def test_fit_epochs_raises_on_nan_without_ray() -> None:
    data = synthetic_data(fill=OVERFLOW)
    with pytest.raises(NonFiniteLossError, match=r"loss is (nan|inf) at epoch 1.*Fix: a lower learning rate"):
        fit_epochs(build_model(MLP), MLP, data, start_epoch=0, end_epoch=2)


def test_trial_seed_is_the_same_for_equivalent_configs() -> None:
    """The retraining recomputes the winner's seed from the stored (normalised, unvalidated) config."""
    raw = {"model": "mlp", "num_layers": np.int64(1), "units": 16, "dropout": 0, "optimizer": "Adam"}
    assert trial_seed(0, raw) == trial_seed(0, cfg.validate(raw))
    assert trial_seed(0, raw) != trial_seed(1, raw)
    assert trial_seed(0, raw) != trial_seed(0, {**raw, "units": 32})


def test_whole_batches_leave_out_less_than_one_batch() -> None:
    assert whole_batches(48000, 256) == 47872 and whole_batches(48000, 128) == 48000
    assert whole_batches(100, 256) == 100  # fewer than one batch: one (partial) batch, nothing left out


def test_evaluation_batches_divide_the_split() -> None:
    assert eval_batch_size(12000, 256) == 1000 and eval_batch_size(10000, 64) == 1000
    assert eval_batch_size(500, 256) == 500 and eval_batch_size(0, 256) == 1
    assert eval_batch_size(2 * 4001, 128) == 128  # 4001 is prime: no divisor in [32, 1024], one partial batch


def test_every_training_step_sees_a_whole_batch() -> None:
    """1000 examples at batch 64: 15 whole batches an epoch; the 40 left over never make a 16th step."""
    model = build_model(MLP)
    fit_epochs(model, MLP, synthetic_data(n=1000), start_epoch=0, end_epoch=2)
    assert int(model.optimizer.iterations) == 2 * 15


def test_cosine_schedule_decays_per_epoch_over_the_given_horizon_and_resumes_on_it() -> None:
    config = {**MLP, "learning_rate": 0.01, "lr_schedule": "cosine"}
    data = synthetic_data(n=128)
    model = build_model(config)
    fit_epochs(model, config, data, start_epoch=0, end_epoch=2, schedule_epochs=4)
    last_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert last_rate == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 1 / 4)))  # epoch 2 ran at index 1's rate
    fit_epochs(model, config, data, start_epoch=2, end_epoch=4, schedule_epochs=4)  # resumed, same horizon
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        0.01 * 0.5 * (1 + np.cos(np.pi * 3 / 4)))  # fmt: skip
    constant = build_model(MLP)
    fit_epochs(constant, MLP, data, start_epoch=0, end_epoch=2)
    assert float(keras.ops.convert_to_numpy(constant.optimizer.learning_rate)) == pytest.approx(1e-3)  # adam default

"""Cross-validated trials (GridSearchCV on Ray): folds, scaling, scores, the grid experiment, parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification

from rtune_fashion.cli import cv_experiment_main
from rtune_fashion.crossval import check_folds, cross_validate, fold_data, stratified_folds
from rtune_fashion.errors import DataError
from rtune_fashion.models import build_model
from rtune_fashion.tabular import TabularData, load_csv
from tests.helpers import ROOT, load_script

CONFIG = {"model": "mlp", "num_layers": 1, "units": 8, "optimizer": "adam", "learning_rate": 0.01,
          "batch_size": 16, "epochs": 20}


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """A synthetic binary table (where the data does not matter), written as a headerless CSV."""
    x, y = make_classification(n_samples=240, n_features=6, n_informative=4, weights=[0.65], random_state=0)
    path = tmp_path_factory.mktemp("csv") / "table.csv"
    np.savetxt(path, np.column_stack([x * 10 + 50, y]), delimiter=",", fmt="%.5f")
    return path


def test_folds_are_stratified_cover_every_row_once_and_repeat_with_the_seed(table: Path) -> None:
    data = load_csv(table)
    folds = stratified_folds(data.y, 3, seed=7)
    held_out = np.concatenate([test for _, test in folds])
    assert sorted(held_out.tolist()) == list(range(len(data.y)))
    share = data.y.mean()
    assert all(abs(data.y[test].mean() - share) < 0.02 for _, test in folds)
    again = stratified_folds(data.y, 3, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
    assert not (stratified_folds(data.y, 3, seed=8)[0][1] == folds[0][1]).all()


def test_standardisation_is_fitted_on_the_training_folds_only(table: Path) -> None:
    data = load_csv(table)
    train, held = stratified_folds(data.y, 3, seed=7)[0]
    fold = fold_data(data, train, held, standardize=True)
    assert np.allclose(fold.x_train.mean(axis=0), 0, atol=1e-4) and np.allclose(fold.x_train.std(axis=0), 1, atol=1e-3)
    expected = (data.x[held] - data.x[train].mean(axis=0)) / data.x[train].std(axis=0)
    assert np.allclose(fold.x_val, expected, atol=1e-4)  # the held-out rows use the training statistics
    assert len(fold.x_test) == 0


def test_two_classes_get_one_sigmoid_unit_and_binary_cross_entropy() -> None:
    model = build_model(CONFIG, (6,), 2)
    assert model.output_shape == (None, 1) and model.layers[-1].activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"
    assert build_model(CONFIG, (6,), 3).output_shape == (None, 3)


def test_cross_validation_reports_the_mean_and_spread_of_the_folds(table: Path) -> None:
    data = load_csv(table)
    result = cross_validate(CONFIG, data, folds=3, seed=7, standardize=True)
    scores = [result[f"fold{i}_accuracy"] for i in range(3)]
    assert result["val_accuracy"] == pytest.approx(np.mean(scores)) and result["val_accuracy_std"] == pytest.approx(
        np.std(scores))  # fmt: skip
    assert 0.8 < result["val_accuracy"] <= 1 and result["fit_epochs"] == 20, result  # learns beyond the majority
    assert cross_validate(CONFIG, data, folds=3, seed=7, standardize=True) == result  # seeded: repeatable


def test_every_training_row_is_fitted_the_last_ones_of_the_file_too() -> None:
    """A class that only the file's last rows have: a fit that cut whole batches (the first 16 of a fold's 30
    training rows, in file order) would never see it, though it is 14 of the 30 held-out rows."""
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 16 + [2] * 28)
    x = (np.eye(3)[y] * 4 + rng.normal(scale=0.3, size=(60, 3))).astype(np.float32)
    data = TabularData(x, y, ("a", "b", "c"), "y", ("zero", "one", "two"))
    result = cross_validate({**CONFIG, "epochs": 40}, data, folds=2, seed=7, standardize=False)
    assert result["val_accuracy"] > 0.9, result


def test_settings_json_names_the_grid_trainable_as_rtune_resume_looks_for_it() -> None:
    from rtune_fashion.crossval import train_cv
    from rtune_fashion.experiment import CROSS_VALIDATED_TRAINABLE, _qualified_name

    assert _qualified_name(train_cv) == CROSS_VALIDATED_TRAINABLE


def test_more_folds_than_the_rarest_class_is_refused() -> None:
    data = TabularData(np.zeros((10, 2), np.float32), np.array([0] * 8 + [1] * 2), ("a", "b"), "y", ("no", "yes"))
    with pytest.raises(DataError, match=r"--folds 3 is more than the 2 rows of class 'yes'.*Fix: --folds 2 or fewer"):
        check_folds(data.y, data.class_names, 3)


def test_bad_cv_flags_are_refused(table: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cv_experiment_main(["--csv", str(table), "--folds", "1"])
    assert exit_.value.code == 2 and "argument --folds: must be 2 or more" in capsys.readouterr().err
    assert cv_experiment_main(["--csv", str(table.parent / "missing.csv")]) == 2
    assert "missing.csv does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_gridsearchcv_and_rtune_agree_on_the_same_folds(ray_local, table: Path, tmp_path: Path, capsys) -> None:
    """scripts/gridsearch_parity.py --quick: the same grid through GridSearchCV + SciKeras and through Ray (in
    this process, on the tests' shared Ray)."""
    out = tmp_path / "parity.json"
    load_script(ROOT / "scripts" / "gridsearch_parity.py").main(["--csv", str(table), "--quick", "--json", str(out)])
    report = json.loads(out.read_text())
    for name in report["optimizers"]:
        (a, sa), (b, sb) = report["sklearn"][name], report["rtune"][name]
        assert abs(a - b) <= 2 * max(sa, sb, 0.02), (name, a, sa, b, sb)  # within fold noise
    assert "| optimizer | GridSearchCV + SciKeras" in capsys.readouterr().out

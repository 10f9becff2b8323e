"""Your own data through the main job's path end to end (search, final model, report), in smoke mode, on data
made here: article C's experiment on 48x48 grey images in 4 class folders, and a search on each other kind of
--data (a colour folder, an .npz, an idx folder, a CSV table). Bad data is refused before anything is written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from rtune_fashion.cli import main
from rtune_fashion.errors import ExperimentError
from rtune_fashion.experiment import ExperimentSettings, run_experiment
from rtune_fashion.sources import DataSource
from tests.helpers import run_script_in_process
from tests.test_sources import FOUR_CLASSES, fashion_slice, write_csv, write_idx_folder, write_image_folder, write_npz

pytestmark = pytest.mark.slow


def _check_summary(experiment_dir: Path, class_names: tuple[str, ...], input_shape: tuple[int, ...]) -> dict:
    summary = json.loads((experiment_dir / "summary.json").read_text())
    assert summary["trials"]["errored"] == 0, summary["errored_trials"]
    data = summary["data"]
    assert tuple(data["class_names"]) == class_names and tuple(data["input_shape"]) == input_shape
    final = summary["final_model"]
    matrix = np.array(final["confusion_matrix"])
    assert matrix.shape == (len(class_names),) * 2 and matrix.sum() == final["test_size"] == data["sizes"]["test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(final["test_accuracy"])
    model = keras.models.load_model(experiment_dir / "best_model.keras")
    outputs = 1 if len(class_names) == 2 else len(class_names)  # two classes: one sigmoid (models.build_model)
    assert model.input_shape[1:] == input_shape and model.output_shape[-1] == outputs
    return summary


def test_article_c_experiment_on_an_image_folder_end_to_end(ray_local, tmp_path: Path, capsys) -> None:
    """`python experiments/cnn_images_hyperopt.py --data FOLDER --smoke-test`, then `rtune report`: the
    class names come from the folders, and the report shows the test confusion matrix with them."""
    root = write_image_folder(tmp_path / "faces", per_class=30)
    code, out, err = run_script_in_process("cnn_images_hyperopt.py", ["--data", str(root), "--smoke-test",
                                                                      "--storage", str(tmp_path / "runs")], capsys)
    assert code == 0, err[-3000:]
    experiment_dir = tmp_path / "runs" / "cnn_article_c_hyperopt_smoke"
    summary = _check_summary(experiment_dir, FOUR_CLASSES, (48, 48, 1))
    assert summary["space"] == "cnn_article_c" and summary["settings"]["data"] == str(root)
    assert out.startswith(f"Data: 120 images from {root}, 48x48 grayscale; 4 classes (coat, dress, pullover, shirt)")
    assert f"Data: images {root}, examples of 48x48x1, 4 classes." in out
    assert "input                   48x48x1" in out  # the layer table at the data's shape, not Fashion-MNIST's
    tested = summary["final_model"]["test_size"]
    assert tested == 17 and f"Test confusion matrix (rows: true class, columns: predicted; {tested} examples):" in out
    row = next(line for line in out.splitlines() if line.startswith("pullover "))
    assert len(row.split()) == 6  # the class, its 4 columns, its recall

    assert main(["report", str(experiment_dir)]) == 0
    report = capsys.readouterr().out
    assert "Test confusion matrix" in report and any(line.startswith("shirt ") for line in report.splitlines())

    assert run_script_in_process("cnn_images_hyperopt.py", ["--smoke-test"], capsys)[0] == 2  # --data is required
    # resumed elsewhere, the stored absolute path still names the data; another --data is another search
    settings = ExperimentSettings(space="cnn_article_c", searcher="hyperopt", storage=str(tmp_path / "runs"),
                                  name="other", data=str(tmp_path / "faces" / ".." / "faces"))  # fmt: skip
    assert settings.data == str(root)


@pytest.mark.parametrize("kind", ["colour folder", "npz", "idx", "csv"])
def test_every_kind_of_data_runs_the_main_path(kind: str, ray_local, tmp_path: Path) -> None:
    """A smoke search, its final model and its summary on each other kind of --data."""
    space, shape, names = "mlp_hyperas", (28, 28, 1), FOUR_CLASSES
    if kind == "colour folder":
        data = write_image_folder(tmp_path / "colour", per_class=15, size=24, rgb=True)
        space, shape = "cnn_article_c", (24, 24, 3)
    elif kind == "npz":
        data = write_npz(tmp_path / "arrays.npz", per_class=15)
    elif kind == "idx":
        data, names = write_idx_folder(tmp_path / "idx", per_class=20), ("0", "1", "7", "9")
    else:
        data, shape, names = write_csv(tmp_path / "table.csv"), (4,), ("no", "yes")
    settings = ExperimentSettings(space=space, searcher="random", storage=str(tmp_path / "runs"), smoke_test=True,
                                  num_samples=1, data=str(data), label="answer" if kind == "csv" else None)  # fmt: skip
    lines: list[str] = []
    run_experiment(settings, echo=lines.append)
    _check_summary(settings.experiment_dir, names, shape)
    assert lines[0].startswith("Data: ")
    assert len(pd.read_csv(settings.experiment_dir / "trials.csv")) == 1  # one trial: the article C test has two
    assert main(["report", str(settings.experiment_dir)]) == 0
    assert (settings.experiment_dir / "report.md").read_text().count("Test confusion matrix") == 1
    if kind == "npz":  # files changed under an unfinished search: its resume is refused before Ray starts
        (settings.experiment_dir / "summary.json").unlink()
        write_npz(data, per_class=15, x_test=fashion_slice(2)[0], y_test=np.array(["coat", "dress"] * 4))
        with pytest.raises(ExperimentError, match=r"Cannot resume .*: its data changed since it started \(sizes: "):
            run_experiment(dataclasses.replace(settings, resume=True), echo=lambda _: None)


def test_bad_data_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    """One line on stderr, exit code 2, no experiment folder; the same for a space that cannot take the data."""
    root = write_image_folder(tmp_path / "images", per_class=4, size=16)
    broken = root / "coat" / "broken.png"
    broken.write_bytes(b"not a png")
    storage = tmp_path / "runs"
    args = ["run", "--space", "mlp_hyperas", "--searcher", "random", "--storage", str(storage), "--smoke-test"]
    assert main([*args, "--data", str(root)]) == 2
    assert f"rtune: error: {broken} is not a readable image" in capsys.readouterr().err
    assert not storage.exists() or not any(storage.iterdir())

    table = write_csv(tmp_path / "table.csv")
    assert main([*args[:2], "cnn_wide", *args[3:], "--data", str(table)]) == 2
    assert "rtune: error: space 'cnn_wide' builds CNNs, which need images" in capsys.readouterr().err
    assert not storage.exists() or not any(storage.iterdir())

    assert main([*args, "--data", str(root), "--label", "x"]) == 2
    assert f"--label applies to CSV tables; --data {root} is images" in capsys.readouterr().err


def test_rtune_train_takes_own_data(tmp_path: Path, capsys) -> None:
    table = write_csv(tmp_path / "table.csv")
    config = json.dumps({"model": "mlp", "num_layers": 1, "units": 8, "epochs": 2, "batch_size": 16})
    assert main(["train", "--config", config, "--data", str(table), "--label", "answer"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Data: 90 rows of 4 features from {table} (label 'answer'); 2 classes (no, yes)")
    assert "Training the config for 2 epochs on 62 examples" in out and "seed 0: train " in out
    assert DataSource(str(table), label="answer").load().sizes() == {"train": 62, "val": 15, "test": 13}

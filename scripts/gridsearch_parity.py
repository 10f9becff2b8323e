"""One grid of article B both ways, on the same folds: scikit-learn GridSearchCV around SciKeras'
KerasClassifier (what the article does) and rtune_fashion's Ray Tune grid search with cross-validated
trials. Prints a markdown table of mean (std) per grid point and both wall-clock times; --json saves it.

    python scripts/gridsearch_parity.py --csv ../shared/data/pima-indians-diabetes.csv          # the article's
    python scripts/gridsearch_parity.py --csv ... --quick --json /tmp/parity.json              # for the test

Both sides build the same Keras model (rtune_fashion.models.build_model) from the same config, train it
for the same epochs and batch size, and score the same StratifiedKFold(3, shuffle=True, seed) folds;
scikit-learn runs the fits one after another in this process (n_jobs=1: Keras models do not pickle
cheaply), rtune_fashion runs grid points as parallel Ray trials (one CPU each).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rtune_fashion import quiet

quiet.import_keras()

from ray import tune  # noqa: E402
from scikeras.wrappers import KerasClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from rtune_fashion.crossval import cv_results, train_cv  # noqa: E402
from rtune_fashion.experiment import ExperimentSettings, run_experiment  # noqa: E402
from rtune_fashion.models import build_model  # noqa: E402
from rtune_fashion.results import load_experiment  # noqa: E402
from rtune_fashion.spaces import PIMA_BASE, SearchSpace, register_space  # noqa: E402
from rtune_fashion.tabular import load_csv, pima_csv  # noqa: E402

FULL = {"optimizers": ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam"], "epochs": 100}
QUICK = {"optimizers": ["sgd", "adam"], "epochs": 10}  # for the test: the path, and parity within fold noise


@contextlib.contextmanager
def _op_determinism_restored() -> Iterator[None]:
    """SciKeras' ``random_state`` turns TensorFlow's op determinism on while it fits; in a process that goes
    on training (the test suite's), a later model without a TensorFlow seed then fails ("Random ops require
    a seed"). Whatever SciKeras leaves, the state before comes back."""
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    try:
        yield
    finally:
        if not was:
            config.disable_op_determinism()


def with_sklearn(data, base: dict, optimizers: list[str], folds: int, seed: int) -> tuple[dict, float]:
    def make_model(optimizer: str) -> object:
        return build_model({**base, "optimizer": optimizer}, data.x.shape[1:], data.num_classes)

    classifier = KerasClassifier(model=make_model, model__optimizer="adam",
                                 epochs=base["epochs"], batch_size=base["batch_size"], verbose=0,
                                 random_state=seed)  # fmt: skip
    search = GridSearchCV(classifier, {"model__optimizer": optimizers}, n_jobs=1,
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed))  # fmt: skip
    started = time.perf_counter()
    with _op_determinism_restored():
        search.fit(data.x, data.y)
    elapsed = time.perf_counter() - started
    scores = {p["model__optimizer"]: (float(m), float(s)) for p, m, s in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], search.cv_results_["std_test_score"],
        strict=True)}  # fmt: skip
    return scores, elapsed


def with_rtune(data, base: dict, optimizers: list[str], folds: int, seed: int) -> tuple[dict, float]:
    space = register_space(SearchSpace(name=f"parity_optimizer_{base['epochs']}", source="gridsearch_parity.py",
                                       params={**base, "optimizer": tune.grid_search(optimizers)}))  # fmt: skip
    with tempfile.TemporaryDirectory() as storage:
        settings = ExperimentSettings(space=space.name, searcher="grid", scheduler="fifo", max_epochs=1, seed=seed,
                                      storage=storage, retrain=False, gpus_per_trial=0.0)  # as GridSearchCV: CPUs
        started = time.perf_counter()
        run_experiment(settings, echo=lambda line: None, trainable=train_cv, data=data,
                       trainable_options={"folds": folds, "standardize": False})  # fmt: skip
        elapsed = time.perf_counter() - started
        rows = cv_results(load_experiment(settings.experiment_dir).trials, ["optimizer"])
    return {row["params"]["optimizer"]: (row["mean_test_score"], row["std_test_score"]) for row in rows}, elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['optimizers']}, {QUICK['epochs']} epochs")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    data = load_csv(pima_csv(args.csv))
    base = {**PIMA_BASE, "epochs": plan["epochs"]}
    sklearn_scores, sklearn_time = with_sklearn(data, base, plan["optimizers"], args.folds, args.seed)
    rtune_scores, rtune_time = with_rtune(data, base, plan["optimizers"], args.folds, args.seed)
    print("| optimizer | GridSearchCV + SciKeras: mean (std) | rtune_fashion: mean (std) | difference |")
    print("|---|---|---|---|")
    for name in plan["optimizers"]:
        (a, sa), (b, sb) = sklearn_scores[name], rtune_scores[name]
        print(f"| {name} | {a:.4f} ({sa:.4f}) | {b:.4f} ({sb:.4f}) | {b - a:+.4f} |")
    print(f"\nWall time: GridSearchCV {sklearn_time:.1f} s, rtune_fashion {rtune_time:.1f} s "
          f"(ratio {sklearn_time / rtune_time:.2f}); {args.folds} folds, {plan['epochs']} epochs, "
          f"batch {base['batch_size']}, seed {args.seed}.")  # fmt: skip
    if args.json:
        report = {"sklearn": sklearn_scores, "rtune": rtune_scores, "sklearn_time_s": sklearn_time,
                  "rtune_time_s": rtune_time, "epochs": plan["epochs"], "optimizers": plan["optimizers"]}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

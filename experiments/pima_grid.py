"""Article B: scikit-learn GridSearchCV's seven grids on the Pima Indians diabetes table, run as Ray Tune
grid searches in parallel, each grid point scored by stratified 3-fold cross-validation (seed 7).

    python experiments/pima_grid.py --csv ../shared/data/pima-indians-diabetes.csv --grid optimizer
    python experiments/pima_grid.py --grid all      # every grid (without --csv: downloaded and checked)

Prints GridSearchCV's summary (best mean score and params, then mean (std) per grid point) and writes
cv_results.csv into each grid's experiment directory.
"""

from rtune_fashion.cli import cv_experiment_main

if __name__ == "__main__":
    raise SystemExit(cv_experiment_main(description=__doc__))

"""Article E's CNN search (Keras Tuner, Bayesian; 100 trials, test 0.920) with Optuna's TPE and ASHA.

By default the whole run ends within 10 minutes, with the training subset and the trial count fitted to
this machine; `--num-samples 100 --train-size 48000 --time-budget none` is the article's budget.
"""

from rtune_fashion.cli import experiment_main

if __name__ == "__main__":
    raise SystemExit(
        experiment_main(description=__doc__, space="cnn_kerastuner", searcher="optuna", max_epochs=6, time_budget_s=600)
    )

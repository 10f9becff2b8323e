"""Article E's CNN search (Keras Tuner, Bayesian; 100 trials, test 0.920) with Optuna's TPE and ASHA.

The defaults are a CPU-sized version; `--num-samples 100 --train-size 48000` is the article's budget.
"""

from rtune_fashion.cli import experiment_main

if __name__ == "__main__":
    raise SystemExit(
        experiment_main(
            description=__doc__,
            space="cnn_kerastuner",
            searcher="optuna",
            num_samples=12,
            max_epochs=6,
            train_size=12000,
        )
    )

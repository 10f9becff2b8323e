"""The main job: our wide CNN space (rtune_fashion.spaces.CNN_WIDE) searched by BOHB.

With no flags it runs in about 15 minutes on a 2-core CPU (a stratified 12,000-image training subset,
the full validation and test sets) and retrains the best model. Scaled up on one H100 (measured: 40 trials
in 295 s, retrained test 0.9425; docs/results.md):

    python experiments/cnn_bohb.py --train-size 48000 --num-samples 40 --max-epochs 27 --gpus-per-trial 0.25 \
        --cpus-per-trial 3

and over the space that gave the preset rtune_best_cnn (add ``--space cnn_large --max-epochs 30``).
"""

from rtune_fashion.cli import experiment_main

if __name__ == "__main__":
    raise SystemExit(
        experiment_main(
            description=__doc__,
            space="cnn_wide",
            searcher="bohb",
            num_samples=12,
            max_epochs=9,
            train_size=12000,
        )
    )

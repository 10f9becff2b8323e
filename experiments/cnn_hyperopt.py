"""Article D's search (Hyperas on the VGG-like CNN) with hyperopt's TPE and ASHA early stopping.

The article: 30 evaluations of 15 epochs on the full data (best val 0.9353, test 0.9227). That is
`--num-samples 30 --max-epochs 15 --train-size 48000 --time-budget none`; by default the whole run ends
within 10 minutes, with the training subset and the trial count fitted to this machine.
"""

from rtune_fashion.cli import experiment_main

if __name__ == "__main__":
    raise SystemExit(
        experiment_main(description=__doc__, space="cnn_hyperas", searcher="hyperopt", max_epochs=6, time_budget_s=600)
    )

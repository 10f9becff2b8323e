"""Article A's search (Hyperas on dense networks) with hyperopt's TPE and ASHA early stopping.

The article: 30 evaluations of 20 epochs (best retrained: val 0.9024, test 0.8871): that is
`--num-samples 30 --train-size 48000 --time-budget none`. By default the whole run ends within 10 minutes,
with the training subset and the trial count fitted to this machine.
"""

from rtune_fashion.cli import experiment_main

if __name__ == "__main__":
    raise SystemExit(
        experiment_main(description=__doc__, space="mlp_hyperas", searcher="hyperopt", max_epochs=20, time_budget_s=600)
    )

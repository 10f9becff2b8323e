"""Each model-based searcher given a space in its own native form, conditions included.

A space is flat (``num_layers`` plus ``units_1..units_3``); :func:`rtune_fashion.spaces.conditions` says
which searched keys some parent value makes unused. Ray's automatic conversions drop that, so TPE and BOHB
would model ``units_3`` from trials that never built a third layer. Here each searcher gets:

* hyperopt: a nested ``hp.choice`` over the parent's values, each branch holding the keys it uses (as
  Hyperas' templates were nested); its suggestion is flattened again;
* Optuna: a define-by-run function that asks for a key only where it is used;
* BOHB: a ConfigSpace with an ``InCondition`` per conditional key, and every quantized integer as the
  categorical of its values (Ray's conversion drops a ``qrandint``'s step and its inclusive upper end;
  hpbandster's BOHB refuses ordinals, and an index would not match the values of points to evaluate).

Each searcher is built with its space, so the Tuner's ``param_space`` holds only the constants
(rtune_fashion.search): a trial's config is the constants plus the suggestion, and never keeps a domain
for a key its config does not use. Contract: every value suggested lies in the space's own set, and a
conditional key is suggested exactly when its config uses it. ``conditions`` of None means the space's
own; ``{}`` gives the flat form (every key every time), which the benchmarks compare against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.search import sample
from ray.tune.search.bohb import TuneBOHB
from ray.tune.search.hyperopt import HyperOptSearch
from ray.tune.search.optuna import OptunaSearch

from rtune_fashion.results import METRIC, MODE
from rtune_fashion.spaces import Condition, SearchSpace, domain_values, integer_values, is_used_in, searched


def _parents_first(keys: list[str], found: Mapping[str, Condition]) -> list[str]:
    parents = {condition.parent for condition in found.values()}
    return sorted(keys, key=lambda key: (key not in parents, key in found))


def _any_value(domain: sample.Domain) -> Any:
    values = domain_values(domain)
    return values[0] if values is not None else domain.lower


def _points(space: SearchSpace, found: Mapping[str, Condition]) -> list[dict[str, Any]]:
    """The space's points to evaluate without the keys their own values make unused (BOHB's ConfigSpace
    refuses an inactive value; the others would record a value the trial never used). A point may leave such
    keys out; a searcher given the flat form (``found`` empty) draws every key, so it gets one of the key's
    values there (the trial does not use it)."""
    domains = searched(space.params)
    points = []
    for point in space.points_to_evaluate:
        used = {key: value for key, value in point.items() if is_used_in(key, point, found)}
        points.append({**{key: _any_value(domains[key]) for key in domains if key not in used
                          and is_used_in(key, point, found)}, **used})  # fmt: skip
    return points


# ---------------------------------------------------------------------------------------------------
# hyperopt


class ConditionalHyperOpt(HyperOptSearch):
    """``HyperOptSearch`` over a nested space: each conditional key lives in the branches of its parent's
    ``hp.choice`` that use it (one hyperopt node shared by those branches), so TPE models it only from the
    trials that used it. Suggestions come back flat, with the unused keys left out."""

    def __init__(self, space: SearchSpace, *, conditions: Mapping[str, Condition], seed: int) -> None:
        self._domains = searched(space.params)
        self._found = dict(conditions)
        self._parent_values = {c.parent: space.values_of(c.parent) for c in self._found.values()}
        super().__init__(space=self._nested_space(), metric=METRIC, mode=MODE,
                         points_to_evaluate=_points(space, self._found) or None, random_state_seed=seed)  # fmt: skip

    def _nested_space(self) -> dict[str, Any]:
        from hyperopt import hp

        nodes = HyperOptSearch.convert_search_space(self._domains)  # one node per key, labelled by the key
        nested = {key: node for key, node in nodes.items() if key not in self._found and key not in self._parent_values}
        for parent, values in self._parent_values.items():
            branches = [{parent: value, **{key: nodes[key] for key, condition in self._found.items()
                                           if condition.parent == parent and value in condition.values}}
                        for value in values]  # fmt: skip
            nested[parent] = hp.choice(parent, branches)
        return nested

    def _setup_hyperopt(self) -> None:
        super()._setup_hyperopt()
        # hyperopt records a point to evaluate with only the labels it gives, while TPE reads every label of every
        # finished trial (hyperopt.base.miscs_to_idxs_vals): a key the point leaves unused gets an empty record,
        # as hyperopt's own trials have for a branch not taken.
        for trial in self._hpopt_trials._dynamic_trials:
            for label in self._domains:
                trial["misc"]["idxs"].setdefault(label, [])
                trial["misc"]["vals"].setdefault(label, [])
        self._hpopt_trials.refresh()

    def _convert_categories_to_indices(self, config: dict[str, Any]) -> None:
        """Rewrite a flat point, in place, as hyperopt's labels record it: the index of a choice's value."""
        labelled = {}
        for key, value in config.items():
            domain = self._domains[key]
            if key in self._parent_values:
                labelled[key] = self._parent_values[key].index(value)
            elif isinstance(domain, sample.Categorical):
                labelled[key] = domain.categories.index(value)
            else:
                labelled[key] = value
        config.clear()
        config.update(labelled)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        suggested = super().suggest(trial_id)
        if not isinstance(suggested, dict):
            return suggested
        flat: dict[str, Any] = {}
        for key, value in suggested.items():
            flat.update(value if key in self._parent_values else {key: value})  # a branch holds its parent's value
        return flat


# ---------------------------------------------------------------------------------------------------
# Optuna


class DefineByRun:
    """Optuna's define-by-run form of a space: a parent is asked for first, and a conditional key only when
    the parent's value uses it. A plain class (not a closure) so the searcher's state pickles on resume."""

    def __init__(self, distributions: Mapping[str, Any], conditions: Mapping[str, Condition]) -> None:
        self.distributions = {key: distributions[key] for key in _parents_first(list(distributions), conditions)}
        self.conditions = dict(conditions)

    def __call__(self, trial: Any) -> None:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        chosen: dict[str, Any] = {}
        for key, dist in self.distributions.items():
            condition = self.conditions.get(key)
            if condition is not None and chosen[condition.parent] not in condition.values:
                continue
            if isinstance(dist, CategoricalDistribution):
                chosen[key] = trial.suggest_categorical(key, dist.choices)
            elif isinstance(dist, IntDistribution):
                chosen[key] = trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
            else:
                chosen[key] = trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def optuna_searcher(space: SearchSpace, *, conditions: Mapping[str, Condition], seed: int) -> OptunaSearch:
    """Optuna's TPE (seeded) over the space's define-by-run form."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = OptunaSearch.convert_search_space(searched(space.params))
    return OptunaSearch(space=DefineByRun(distributions, conditions), metric=METRIC, mode=MODE,
                        points_to_evaluate=_points(space, conditions) or None,
                        sampler=optuna.samplers.TPESampler(seed=seed))  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# BOHB


def configuration_space(space: SearchSpace, conditions: Mapping[str, Condition]) -> Any:
    """The space as a ConfigSpace: Ray's conversion for all but quantized integers (categoricals of their
    values here), then one ``InCondition`` per conditional key."""
    import ConfigSpace

    domains = searched(space.params)
    quantized = {key: domain for key, domain in domains.items() if isinstance(domain, sample.Integer)
                 and isinstance(domain.get_sampler(), sample.Quantized)}  # fmt: skip
    config_space = TuneBOHB.convert_search_space({k: v for k, v in domains.items() if k not in quantized})
    for key, domain in quantized.items():
        config_space.add(ConfigSpace.CategoricalHyperparameter(key, choices=integer_values(domain)))
    for key, condition in conditions.items():
        config_space.add(ConfigSpace.InCondition(config_space[key], config_space[condition.parent],
                                                 list(condition.values)))  # fmt: skip
    return config_space


def bohb_searcher(space: SearchSpace, *, conditions: Mapping[str, Condition], seed: int) -> TuneBOHB:
    """``TuneBOHB`` (seeded) over :func:`configuration_space`."""
    return TuneBOHB(space=configuration_space(space, conditions), metric=METRIC, mode=MODE,
                    points_to_evaluate=_points(space, conditions) or None, seed=seed)  # fmt: skip


def hyperopt_searcher(space: SearchSpace, *, conditions: Mapping[str, Condition], seed: int) -> HyperOptSearch:
    """hyperopt's TPE (seeded) over the space's nested form (:class:`ConditionalHyperOpt`)."""
    return ConditionalHyperOpt(space, conditions=conditions, seed=seed)

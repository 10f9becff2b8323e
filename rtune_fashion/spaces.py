"""Search spaces as data: the articles' spaces, ours, and their validation before Ray starts.

A space is a flat dict of Ray Tune domains and constants over the keys of :mod:`rtune_fashion.config`.
:func:`validate_space` refuses, with a :class:`SearchSpaceError` naming the key and the fix:

* an unknown key, or a missing/non-constant ``model``;
* a range with lower >= upper, an empty choice or grid (Ray itself refuses a log range from 0);
* a value any searcher could draw that the model builder would refuse (type or range);
* for CNNs, any combination of the shape-deciding choices that shrinks a feature map below 1x1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ray import tune
from ray.tune.search import sample

from rtune_fashion import config as cfg
from rtune_fashion.errors import ModelConfigError, SearchSpaceError
from rtune_fashion.models import FASHION_INPUT_SHAPE, cnn_feature_maps

_MAX_SHAPE_COMBINATIONS = 20_000


def integer_values(domain: sample.Integer) -> list[int]:
    """Every value Ray draws from an integer domain: ``randint``'s ``[lower, upper)``, and for ``qrandint``
    the multiples of q in ``[lower, upper]`` (its upper end is inclusive)."""
    sampler = domain.get_sampler()
    if isinstance(sampler, sample.Quantized):
        q = int(sampler.q)
        return list(range(-(-int(domain.lower) // q) * q, int(domain.upper) + 1, q))
    return list(range(int(domain.lower), int(domain.upper)))


@dataclass(frozen=True)
class Condition:
    """A searched key is used only when ``parent`` (a searched key) takes one of ``values``."""

    parent: str
    values: tuple[Any, ...]


def searched(params: Mapping[str, Any]) -> dict[str, sample.Domain]:
    """The keys of ``params`` a searcher draws (its Ray Tune domains; not constants, not grids)."""
    return {key: value for key, value in params.items() if isinstance(value, sample.Domain)}


def domain_values(domain: sample.Domain) -> list[Any] | None:
    """Every value a categorical or integer domain can give (None for a continuous one)."""
    if isinstance(domain, sample.Categorical):
        return list(domain.categories)
    if isinstance(domain, sample.Integer):
        return integer_values(domain)
    return None


def is_used_in(key: str, point: Mapping[str, Any], found: Mapping[str, Condition]) -> bool:
    """Whether ``point`` (values of searched keys) uses ``key``, under the conditions ``found``."""
    return key not in found or point.get(found[key].parent) in found[key].values


def _constants(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if not isinstance(value, sample.Domain | Mapping)}


def conditions(params: Mapping[str, Any]) -> dict[str, Condition]:
    """The searched keys of ``params`` that some value of a searched key makes unused (``units_3`` unless
    ``num_layers`` is 3; ``lr_sgd`` unless ``optimizer`` is sgd), from :func:`config.is_used`, which the
    builders follow. Each searcher is given these in its own form (rtune_fashion.native)."""
    model = params.get("model")
    constants = _constants(params)
    domains = searched(params)
    found: dict[str, Condition] = {}
    for key in domains:
        parent = cfg.governing_key(key, model)
        values = domain_values(domains[parent]) if parent in domains else None
        if values is None:
            continue
        used = tuple(value for value in values if cfg.is_used(key, {**constants, parent: value}))
        if len(used) < len(values):
            found[key] = Condition(parent, used)
    return found


@dataclass(frozen=True)
class SearchSpace:
    """A named search space: the Ray Tune param space, where it comes from, and what it is for."""

    name: str
    params: dict[str, Any]
    source: str
    description: str = ""
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_grid(self) -> bool:
        return is_grid(self.params)

    @property
    def grid_points(self) -> int:
        """Points in one pass over the grid: the product of the ``tune.grid_search`` lists (1 without any)."""
        return math.prod(len(v["grid_search"]) for v in self.params.values() if _is_grid_value(v))

    @property
    def conditions(self) -> dict[str, Condition]:
        """Searched keys that are used only for some values of another (:func:`conditions`)."""
        return conditions(self.params)

    def values_of(self, key: str) -> list[Any]:
        """Every value a searcher can draw for a categorical or integer key (a constant: itself)."""
        domain = self.params[key]
        values = domain_values(domain) if isinstance(domain, sample.Domain) else [domain]
        if values is None:
            raise SearchSpaceError(f"Key {key!r} of space {self.name!r} is continuous; it has no list of values.")
        return values

    def restricted(self, keep: Mapping[str, list[Any]]) -> SearchSpace:
        """The same space with only the listed values of each key in ``keep`` (a single value becomes a
        constant), without the searched keys no config then uses; points to evaluate outside the new domains
        are left out. Same name: a restricted space
        is the named space fitted to a budget, recorded with the experiment."""
        params = dict(self.params)
        for key, values in keep.items():
            allowed = [v for v in self.values_of(key) if v in values]
            if not allowed:
                raise SearchSpaceError(f"Restricting {key!r} of space {self.name!r} to {values} leaves no value.")
            params[key] = allowed[0] if len(allowed) == 1 else tune.choice(allowed)
        for key in never_used(params):  # units_3 once num_layers keeps only 2: nothing left to search
            del params[key]
        kept = set(searched(params))
        points = [{k: v for k, v in point.items() if k in kept} for point in self.points_to_evaluate
                  if all(point.get(k, values[0]) in values for k, values in keep.items())]  # fmt: skip
        return dataclasses.replace(self, params=params, points_to_evaluate=points)

    def without(self, dropped: Mapping[str, list[Any]]) -> SearchSpace:
        """The space without the ``dropped`` values of each key (see :meth:`restricted`)."""
        keep = {key: [v for v in self.values_of(key) if v not in values] for key, values in dropped.items()}
        return self.restricted(keep)


def is_grid(params: Mapping[str, Any]) -> bool:
    """Whether any key of ``params`` is a ``tune.grid_search``."""
    return any(_is_grid_value(value) for value in params.values())


def _is_grid_value(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"grid_search"}


# ---------------------------------------------------------------------------------------------------
# Validation


def _candidates(key: str, value: Any) -> list[Any] | None:
    """Representative values a searcher can draw for ``key`` (None for an opaque ``sample_from``).

    Categories and grids: every value; integer ranges: both ends (randint's upper end is exclusive,
    qrandint's inclusive); float ranges: the lower end only (the upper end is checked as a bound).
    """
    if _is_grid_value(value):
        values = value["grid_search"]
        if not isinstance(values, list | tuple) or not values:
            raise SearchSpaceError(f"Search space key {key!r}: grid_search needs a non-empty list, got {values!r}.")
        return list(values)
    if isinstance(value, sample.Categorical):
        if not value.categories:
            raise SearchSpaceError(f"Search space key {key!r}: tune.choice([]) has no categories; give at least one.")
        return list(value.categories)
    if isinstance(value, sample.Float | sample.Integer):
        lower, upper = value.lower, value.upper
        if lower is None or upper is None or not lower < upper:
            raise SearchSpaceError(
                f"Search space key {key!r}: lower < upper must hold, but got (lower={lower}, upper={upper})."
            )
        if isinstance(value, sample.Integer):
            inclusive = isinstance(value.get_sampler(), sample.Quantized)
            return [lower, upper if inclusive else upper - 1]
        return [lower]
    if isinstance(value, sample.Function):
        return None
    if isinstance(value, sample.Domain):
        raise SearchSpaceError(f"Search space key {key!r}: unsupported domain {type(value).__name__}.")
    return [value]


def _check_float_upper(key: str, value: Any) -> None:
    if not isinstance(value, sample.Float):
        return
    param = cfg.PARAMS[cfg.split_key(key)[0]]
    if param.high is not None and value.upper > param.high:
        raise SearchSpaceError(
            f"Search space key {key!r}: range [{value.lower}, {value.upper}] goes beyond the accepted "
            f"maximum {param.high}. Fix: lower its upper bound."
        )


def validate_space(params: Mapping[str, Any], *, name: str = "search space") -> None:
    """Check ``params`` before Ray starts; see the module docstring for what is refused.

    Raises:
        SearchSpaceError: the first problem found, naming the key, the value and the fix.
    """
    model = params.get("model")
    if model not in cfg.MODELS:
        raise SearchSpaceError(
            f"{name}: key 'model' must be the constant 'mlp' or 'cnn' (one builder per search), got {model!r}."
        )
    unknown = [key for key in params if not cfg.is_known_key(key, model)]
    if unknown:
        raise SearchSpaceError(
            f"{name}: unknown key {unknown[0]!r} for a {model} model. Fix: use the keys listed by "
            "`rtune describe --keys` (per-layer forms such as units_2 where a key has them)."
        )
    reference = {k: v for k, v in params.items() if not isinstance(v, sample.Domain | Mapping)}
    candidates: dict[str, list[Any]] = {}
    for key, value in params.items():
        values = _candidates(key, value)
        if values is None:
            continue
        _check_float_upper(key, value)
        for candidate in values:
            try:
                cfg.validate({**reference, "model": model, key: candidate})
            except ModelConfigError as error:
                raise SearchSpaceError(f"{name}: key {key!r} can take a value the model refuses: {error}") from error
        candidates[key] = values
    _check_every_searched_key_is_used(params, name)
    if model == "cnn":
        _check_cnn_shapes(params, candidates, name)


def _all_candidates(params: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {key: values for key, value in params.items() if (values := _candidates(key, value)) is not None}


def check_fits_data(space: SearchSpace, input_shape: tuple[int, ...], what: str = "this data") -> None:
    """Refuse a space whose models cannot take examples of ``input_shape`` (before Ray starts): a CNN or
    augmentation on examples that are not images (height, width, channels), or a CNN that would shrink these
    images below 1x1.

    Raises:
        SearchSpaceError: naming the space, the data's shape and the fix.
    """
    params = space.params
    shape = "x".join(map(str, input_shape))
    if len(input_shape) == 3:
        if params.get("model") == "cnn":
            _check_cnn_shapes(params, _all_candidates(params), f"space {space.name!r} on {shape} images", input_shape)
        return
    mlp_spaces = ", ".join(name for name, other in SPACES.items()
                           if other.params.get("model") == "mlp" and not _augments(other.params)
                           and not name.startswith("pima_"))  # fmt: skip
    if params.get("model") == "cnn":
        raise SearchSpaceError(f"space {space.name!r} builds CNNs, which need images (height x width x channels); "
                               f"{what} has examples of shape {shape}. Fix: an MLP space ({mlp_spaces}).")
    if _augments(params):
        raise SearchSpaceError(f"space {space.name!r} searches {', '.join(_augments(params))}, which flip or shift "
                               f"images; {what} has examples of shape {shape}. Fix: an MLP space without "
                               f"augmentation ({mlp_spaces}).")  # fmt: skip


def _augments(params: Mapping[str, Any]) -> list[str]:
    """The augmentation keys that ``params`` may turn on."""
    return [key for key in ("augment_flip", "augment_translate")
            if key in params and any(value not in (False, 0) for value in _candidates(key, params[key]) or [1])]


def never_used(params: Mapping[str, Any]) -> list[str]:
    """The searched keys of ``params`` that no config of it uses (``units_3`` where ``num_layers`` is at most 2)."""
    model = params["model"]
    constants = _constants(params)
    found = conditions(params)
    unused = []
    for key in searched(params):
        parent = cfg.governing_key(key, model)
        if parent is None or isinstance(params.get(parent), Mapping):
            continue  # always used, or governed by a grid (whose points are checked one by one)
        if isinstance(params.get(parent), sample.Domain):
            if key in found and not found[key].values:
                unused.append(key)
        elif not cfg.is_used(key, constants):
            unused.append(key)
    return unused


def _check_every_searched_key_is_used(params: Mapping[str, Any], name: str) -> None:
    """A searched key that no config of the space uses makes every searcher model a dimension that does nothing."""
    for key in never_used(params):
        parent = cfg.governing_key(key, params["model"])
        given = params.get(parent, cfg.PARAMS[parent].default)
        shown = f"tune.{type(given).__name__}" if isinstance(given, sample.Domain) else repr(given)
        raise SearchSpaceError(
            f"{name}: key {key!r} is searched but no config uses it ({parent} is {shown}). Fix: remove it, "
            f"or let {parent} take a value that uses it."
        )


def _in_domain(value: Any, domain: Any) -> bool:
    if isinstance(domain, sample.Categorical):
        return value in domain.categories
    if isinstance(domain, sample.Float):
        return isinstance(value, int | float) and domain.lower <= value <= domain.upper
    if isinstance(domain, sample.Integer):  # the values of integer_values(), without listing them
        sampler = domain.get_sampler()
        if not isinstance(value, int) or value < domain.lower:
            return False
        if isinstance(sampler, sample.Quantized):  # a qrandint's steps only: what every searcher draws (BOHB too)
            return value <= domain.upper and value % int(sampler.q) == 0
        return value < domain.upper
    return True


def validate(space: SearchSpace) -> None:
    """Check a named space: its params (:func:`validate_space`) and its points to evaluate.

    Raises:
        SearchSpaceError: also for a point that names a key the space does not search, leaves out one its
            config uses (it may leave out those it makes unused: ``units_3`` at ``num_layers`` 2), or gives a
            value outside the key's domain.
    """
    name = f"space {space.name!r}"
    validate_space(space.params, name=name)
    keys = set(searched(space.params))
    found = space.conditions
    for number, point in enumerate(space.points_to_evaluate, start=1):
        needed = {key for key in keys if is_used_in(key, point, found)}
        if not needed <= set(point) <= keys:
            raise SearchSpaceError(
                f"{name}: point to evaluate {number} must give the searched keys its config uses; extra: "
                f"{sorted(set(point) - keys)}, missing: {sorted(needed - set(point))}."
            )
        for key, value in point.items():
            if not _in_domain(value, space.params[key]):
                raise SearchSpaceError(
                    f"{name}: point to evaluate {number} has {key}={value!r}, outside the key's domain."
                )


def _check_cnn_shapes(params: Mapping[str, Any], candidates: dict[str, list[Any]], name: str,
                      input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE) -> None:  # fmt: skip
    """Build no model; compute the feature maps of every combination of shape-deciding values."""
    shape_keys = [k for k, v in candidates.items() if cfg.split_key(k)[0] in cfg.SHAPE_KEYS and len(v) > 1]
    fixed = {k: values[0] for k, values in candidates.items()}
    combinations = itertools.product(*(candidates[k] for k in shape_keys))
    for count, combination in enumerate(combinations):
        if count >= _MAX_SHAPE_COMBINATIONS:
            break
        chosen = dict(zip(shape_keys, combination, strict=True))
        try:
            cnn_feature_maps({**fixed, **chosen}, input_shape)
        except ModelConfigError as error:
            where = ", ".join(f"{k}={v!r}" for k, v in chosen.items())
            raise SearchSpaceError(
                f"{name} allows an impossible CNN (with {where}), so narrow these ranges: {error}"
            ) from error


def fingerprint(space: SearchSpace) -> str:
    """A hash of the space's definition: stored with an experiment, compared when it is resumed."""

    def describe(value: Any) -> Any:
        if isinstance(value, sample.Domain):
            sampler = value.get_sampler()
            return {
                "domain": type(value).__name__,
                "sampler": type(sampler).__name__,
                "q": getattr(sampler, "q", None),
                **{k: getattr(value, k) for k in ("lower", "upper", "categories") if hasattr(value, k)},
            }
        return value

    text = json.dumps({k: describe(v) for k, v in sorted(space.params.items())}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# The spaces

_LEARNING_RATES_HYPERAS = [1e-3, 1e-2, 1e-1]

MLP_HYPERAS = SearchSpace(
    name="mlp_hyperas",
    source="Article A (Hyperas, TPE): 30 evaluations of 20 epochs",
    description="2 or 3 dense layers of 128-1024 units, relu/sigmoid, dropout U(0,1) each; "
    "adam/sgd/rmsprop each with its own learning rate in {1e-3, 1e-2, 1e-1}; batch 128-512",
    params={
        "model": "mlp",
        "num_layers": tune.choice([2, 3]),
        **{f"units_{i}": tune.choice([128, 256, 512, 1024]) for i in (1, 2, 3)},
        **{f"activation_{i}": tune.choice(["relu", "sigmoid"]) for i in (1, 2, 3)},
        **{f"dropout_{i}": tune.uniform(0.0, 1.0) for i in (1, 2, 3)},
        "optimizer": tune.choice(["adam", "sgd", "rmsprop"]),
        **{f"lr_{name}": tune.choice(_LEARNING_RATES_HYPERAS) for name in ("adam", "sgd", "rmsprop")},
        "batch_size": tune.choice([128, 256, 512]),
    },
)

CNN_HYPERAS = SearchSpace(
    name="cnn_hyperas",
    source="Article D (Hyperas on the VGG-like CNN, TPE): 30 evaluations of 15 epochs, Adam 1e-3, batch 256",
    description="filters 16-16-32-32 or 32-32-64-64, batch norm in block 2, dropout U(0,1) after each pool; "
    "1 or 2 dense layers of 256/512/1024 with batch norm and dropout U(0,1)",
    params={
        "model": "cnn",
        "num_blocks": 2,
        "convs_per_block": 2,
        "filters": tune.choice([16, 32]),  # doubles in block 2
        "padding": "same",
        "batch_norm_1": False,
        "batch_norm_2": True,
        "dropout_1": tune.uniform(0.0, 1.0),
        "dropout_2": tune.uniform(0.0, 1.0),
        "num_dense": tune.choice([1, 2]),
        "dense_units_1": tune.choice([256, 512, 1024]),
        "dense_units_2": tune.choice([256, 512, 1024]),
        "dense_batch_norm": True,
        "dense_dropout_1": tune.uniform(0.0, 1.0),
        "dense_dropout_2": tune.uniform(0.0, 1.0),
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "batch_size": 256,
    },
)

MLP_KERASTUNER = SearchSpace(
    name="mlp_kerastuner",
    source="Article E (Keras Tuner, Bayesian optimisation), MLP space",
    description="1-3 dense layers of 50-350 units (step 50), dropout {0, 0.1, 0.2}; "
    "SGD (Nesterov, momentum 0.9) or Adam; learning rate {0.1, 0.01, 0.001}",
    params={
        "model": "mlp",
        "num_layers": tune.randint(1, 4),
        **{f"units_{i}": tune.qrandint(50, 350, 50) for i in (1, 2, 3)},
        "dropout": tune.choice([0.0, 0.1, 0.2]),
        "optimizer": tune.choice(["sgd", "adam"]),
        "momentum": 0.9,
        "nesterov": True,
        "learning_rate": tune.choice([0.1, 0.01, 0.001]),
        "batch_size": 32,  # Keras' default, which the article kept
    },
)

CNN_KERASTUNER = SearchSpace(
    name="cnn_kerastuner",
    source="Article E (Keras Tuner, Bayesian optimisation), CNN space: 100 trials",
    description="1-3 conv-pool-dropout blocks of 32 or 64 filters, valid or same padding; dense 25-150 "
    "(step 25); SGD (Nesterov 0.9) or Adam; learning rate {0.01, 0.001}",
    params={
        "model": "cnn",
        "num_blocks": tune.randint(1, 4),
        "convs_per_block": 1,
        **{f"filters_{i}": tune.choice([32, 64]) for i in (1, 2, 3)},
        "padding": tune.choice(["valid", "same"]),
        "dropout": 0.25,  # the article's blocks end in dropout; its rate is not given
        "num_dense": 1,
        "dense_units": tune.qrandint(25, 150, 25),
        "optimizer": tune.choice(["sgd", "adam"]),
        "momentum": 0.9,
        "nesterov": True,
        "learning_rate": tune.choice([0.01, 0.001]),
        "batch_size": 32,
    },
)

CNN_WIDE = SearchSpace(
    name="cnn_wide",
    source="rtune_fashion's own space for BOHB (cnn_bohb.py)",
    description="2-3 VGG blocks of 1-2 convs, 16/32/64 base filters doubling per block, 3x3 or 5x5, "
    "batch norm, dropout; 1-2 dense layers; adam/nadam at a log-uniform learning rate; batch size; "
    "flip and shift augmentation",
    params={
        "model": "cnn",
        "num_blocks": tune.randint(2, 4),
        "convs_per_block": tune.randint(1, 3),
        "filters": tune.choice([16, 32, 64]),
        "kernel_size": tune.choice([3, 5]),
        "padding": "same",
        "batch_norm": tune.choice([True, False]),
        "dropout": tune.uniform(0.0, 0.5),
        "num_dense": tune.randint(1, 3),
        "dense_units": tune.choice([64, 128, 256, 512]),
        "dense_dropout": tune.uniform(0.0, 0.6),
        "optimizer": tune.choice(["adam", "nadam"]),
        "learning_rate": tune.loguniform(2e-4, 5e-3),
        "batch_size": tune.choice([64, 128, 256]),
        "augment_flip": tune.choice([True, False]),
        "augment_translate": tune.choice([0.0, 0.05, 0.1]),
        "lr_schedule": tune.choice(["constant", "cosine"]),
    },
    # Warm starts, so a small budget starts from known-good points instead of only random ones: a CPU-sized
    # VGG net (16-32-64 filters, batch norm, dropout, cosine schedule: 15 MFLOPs per image, what a time
    # budget on a slow machine keeps; test 0.9231 after 12 epochs on all 48,000 images, docs/MEASURED.md),
    # and article D's best CNN (32-32-64-64, batch norm, dropout, dense 256) in this space's terms.
    points_to_evaluate=[
        {"num_blocks": 3, "convs_per_block": 2, "filters": 16, "kernel_size": 3, "batch_norm": True,
         "dropout": 0.2, "num_dense": 1, "dense_units": 256, "dense_dropout": 0.4, "optimizer": "adam",
         "learning_rate": 2e-3, "batch_size": 128, "augment_flip": False, "augment_translate": 0.0,
         "lr_schedule": "cosine"},
        {"num_blocks": 2, "convs_per_block": 2, "filters": 32, "kernel_size": 3, "batch_norm": True,
         "dropout": 0.25, "num_dense": 1, "dense_units": 256, "dense_dropout": 0.5, "optimizer": "adam",
         "learning_rate": 1e-3, "batch_size": 128, "augment_flip": False, "augment_translate": 0.0,
         "lr_schedule": "constant"},
    ],  # fmt: skip
)

CNN_LARGE = SearchSpace(
    name="cnn_large",
    source="rtune_fashion's CNN space for a GPU budget (issue 8: beat article D's 0.9227)",
    description="VGG blocks of two 3x3 convs with batch norm, 32/48/64 base filters doubling per block, 2 or 3 "
    "blocks, dropout; one dense layer; adam/nadam at a log-uniform learning rate, constant or cosine schedule, "
    "L2; batch 128 or 256; flip and shift augmentation",
    params={
        "model": "cnn",
        "num_blocks": tune.choice([2, 3]),
        "convs_per_block": 2,
        "filters": tune.choice([32, 48, 64]),
        "kernel_size": 3,
        "padding": "same",
        "batch_norm": True,
        "dropout": tune.uniform(0.1, 0.5),
        "num_dense": 1,
        "dense_units": tune.choice([128, 256, 512]),
        "dense_batch_norm": True,
        "dense_dropout": tune.uniform(0.2, 0.75),
        "optimizer": tune.choice(["adam", "nadam"]),
        "learning_rate": tune.loguniform(3e-4, 3e-3),
        "lr_schedule": tune.choice(["constant", "cosine"]),
        "l2": tune.choice([0.0, 1e-5, 1e-4]),
        "batch_size": tune.choice([128, 256]),
        "augment_flip": tune.choice([True, False]),
        "augment_translate": tune.choice([0.0, 0.05, 0.1]),
    },
    # Warm start: the best hand-made candidate on the CPU (article D's CNN with cosine, flips, 5% shifts: test
    # 0.9290 after 30 epochs), as close as this space gets to it (one dropout for both blocks).
    points_to_evaluate=[
        {"num_blocks": 2, "filters": 32, "dropout": 0.25, "dense_units": 256, "dense_dropout": 0.7,
         "optimizer": "adam", "learning_rate": 1e-3, "lr_schedule": "cosine", "l2": 0.0, "batch_size": 256,
         "augment_flip": True, "augment_translate": 0.05},
    ],  # fmt: skip
)

MLP_WIDE = SearchSpace(
    name="mlp_wide",
    source="rtune_fashion's own MLP space (issue 8: beat article A's 0.8871)",
    description="2-3 dense layers of 256-1024 units with batch norm or not and dropout; adam/nadam at a "
    "log-uniform learning rate, constant or cosine schedule; batch size; shift and flip augmentation",
    params={
        "model": "mlp",
        "num_layers": tune.randint(2, 4),
        "units": tune.choice([256, 512, 1024]),
        "batch_norm": tune.choice([True, False]),
        "dropout": tune.uniform(0.0, 0.6),
        "optimizer": tune.choice(["adam", "nadam"]),
        "learning_rate": tune.loguniform(1e-4, 3e-3),
        "lr_schedule": tune.choice(["constant", "cosine"]),
        "batch_size": tune.choice([128, 256, 512]),
        "augment_flip": tune.choice([True, False]),
        "augment_translate": tune.choice([0.0, 0.05, 0.1]),
    },
    # Warm start: article A's best MLP in this space's terms (one width and dropout for all layers).
    points_to_evaluate=[
        {"num_layers": 3, "units": 1024, "batch_norm": False, "dropout": 0.4, "optimizer": "adam",
         "learning_rate": 1e-3, "lr_schedule": "constant", "batch_size": 256, "augment_flip": False,
         "augment_translate": 0.0},
    ],  # fmt: skip
)

MLP_GRID = SearchSpace(
    name="mlp_grid",
    source="Article B's grid style (GridSearchCV), on Fashion-MNIST: optimizer x learning rate",
    description="a 2-layer 256-unit MLP; every optimizer crossed with three learning rates",
    params={
        "model": "mlp",
        "num_layers": 2,
        "units": 256,
        "dropout": 0.2,
        "optimizer": tune.grid_search(["adam", "sgd", "rmsprop", "nadam"]),
        "learning_rate": tune.grid_search([1e-3, 1e-2, 1e-1]),
        "batch_size": 256,
    },
)

# Article B: seven GridSearchCV grids on the Pima table (3-fold CV, seed 7), for experiments/pima_grid.py.
# The base model is the article's: Dense(12, relu) -> Dense(1, sigmoid), Adam, 100 epochs at batch 10;
# each grid varies its own keys. Keras 3 names: uniform -> random_uniform, normal -> random_normal,
# zero -> zeros. The article's best mean CV accuracy is in each description.
PIMA_BASE = {"model": "mlp", "num_layers": 1, "units": 12, "activation": "relu", "optimizer": "adam",
             "kernel_initializer": "glorot_uniform", "batch_size": 10, "epochs": 100}  # fmt: skip
_PIMA_SOURCE = "Article B (GridSearchCV on Pima Indians diabetes, 3-fold CV)"


def _pima(name: str, description: str, **grid: list[Any]) -> SearchSpace:
    params = {**PIMA_BASE, **{key: tune.grid_search(values) for key, values in grid.items()}}
    return SearchSpace(name=f"pima_{name}", source=_PIMA_SOURCE, description=description, params=params)


PIMA_GRIDS = (
    _pima("batch_epochs", "batch size x epochs; article: 0.686 (batch 20, 100 epochs)",
          batch_size=[10, 20, 40, 60, 80, 100], epochs=[10, 50, 100]),
    _pima("optimizer", "optimizer; article: 0.704 (Adam)",
          optimizer=["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam"]),
    _pima("sgd", "SGD learning rate x momentum; article: 0.681 (0.01, 0)", optimizer=["sgd"],
          learning_rate=[0.001, 0.01, 0.1, 0.2, 0.3], momentum=[0.0, 0.2, 0.4, 0.6, 0.8, 0.9]),
    _pima("init", "hidden weight init; article: 0.720 (uniform)",
          kernel_initializer=["random_uniform", "lecun_uniform", "random_normal", "zeros", "glorot_normal",
                              "glorot_uniform", "he_normal", "he_uniform"]),
    _pima("activation", "hidden activation; article: 0.723 (linear)",
          activation=["softmax", "softplus", "softsign", "relu", "tanh", "sigmoid", "hard_sigmoid", "linear"]),
    _pima("dropout", "dropout x max-norm constraint; article: 0.724 (0.2, 4)",
          dropout=[round(0.1 * i, 1) for i in range(10)], max_norm=[1.0, 2.0, 3.0, 4.0, 5.0]),
    _pima("neurons", "hidden neurons; article: 0.715 (5)", units=[1, 5, 10, 15, 20, 25, 30]),
)  # fmt: skip

CNN_ARTICLE_C = SearchSpace(
    name="cnn_article_c",
    source="Article C (Hyperas on a CNN for 48x48 grey images in 4 classes): for your own image folder",
    description="two blocks with batch norm and a max-pool each: two 5x5 convs of 32 filters, then two or three "
    "3x3 convs of 64 (4-5 conv layers), dropout U(0,1) after each pool; 2 dense layers of 256/512/1024 units, "
    "dropout U(0,1) each; rmsprop/adam/sgd at Keras' default learning rates; batch 64 or 128",
    params={
        "model": "cnn",
        "num_blocks": 2,
        "convs_per_block_1": 2,
        "convs_per_block_2": tune.choice([2, 3]),
        "kernel_size_1": 5,
        "kernel_size_2": 3,
        "filters": 32,  # doubles in block 2
        "padding": "same",
        "batch_norm": True,
        "dropout": tune.uniform(0.0, 1.0),
        "num_dense": 2,
        **{f"dense_units_{i}": tune.choice([256, 512, 1024]) for i in (1, 2)},
        **{f"dense_dropout_{i}": tune.uniform(0.0, 1.0) for i in (1, 2)},
        "optimizer": tune.choice(["rmsprop", "adam", "sgd"]),
        "batch_size": tune.choice([64, 128]),
    },
)

SPACES: dict[str, SearchSpace] = {
    s.name: s for s in (MLP_HYPERAS, CNN_HYPERAS, MLP_KERASTUNER, CNN_KERASTUNER, CNN_WIDE, CNN_LARGE, MLP_WIDE,
                         MLP_GRID, CNN_ARTICLE_C, *PIMA_GRIDS)
}


def register_space(space: SearchSpace) -> SearchSpace:
    """Validate ``space`` and make it available by name (to experiments, the CLI of this process).

    Raises:
        SearchSpaceError: an invalid space, or a name already taken by a different space.
    """
    validate(space)
    existing = SPACES.get(space.name)
    if existing is not None and fingerprint(existing) != fingerprint(space):
        raise SearchSpaceError(f"A different search space is already registered as {space.name!r}; rename yours.")
    SPACES[space.name] = space
    return space


def get_space(name: str) -> SearchSpace:
    """The named space; SearchSpaceError listing the names for an unknown one."""
    if name not in SPACES:
        raise SearchSpaceError(f"Unknown search space {name!r}. Spaces: {', '.join(SPACES)}.")
    return SPACES[name]

"""Model configurations: the one table of hyperparameters, and the one place configs are normalised.

A configuration is a flat dict (what Ray Tune samples). Conditional structure is expressed with a
count plus indexed keys, so that every searcher (hyperopt, Optuna, BOHB) can handle it:

* ``num_layers`` (MLP), ``num_blocks`` (CNN) and ``num_dense`` (CNN head) give the depth;
* a per-layer key ``units_2`` overrides the shared key ``units`` for layer 2 (indices start at 1);
  keys of layers beyond the depth are ignored;
* ``lr_<optimizer>`` (for example ``lr_sgd``) overrides ``learning_rate`` for that optimizer, so a
  space can give each optimizer its own learning rates, as Hyperas does.

:func:`normalize` turns numpy scalars (BOHB's ConfigSpace returns ``numpy.int64``) into Python types;
:func:`validate` checks every value and raises :class:`ModelConfigError` naming the key, the value and
the accepted values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtune_fashion.errors import ModelConfigError

MODELS = ("mlp", "cnn")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "nadam", "adagrad", "adadelta", "adamax")
LR_SCHEDULES = ("constant", "cosine")
ACTIVATIONS = (
    "relu", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "softplus", "softsign", "hard_sigmoid",
    "linear", "leaky_relu", "softmax",
)  # fmt: skip
INITIALIZERS = (
    "auto", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
    "lecun_uniform", "random_uniform", "random_normal", "zeros",
)  # fmt: skip
# Defaults of the learning rate when neither learning_rate nor lr_<optimizer> is given (the articles'
# advice: Adam about 1e-3, SGD about 0.1).
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 0.1, "rmsprop": 1e-3, "nadam": 1e-3, "adagrad": 1e-3,
                          "adadelta": 1e-3, "adamax": 1e-3}  # fmt: skip


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, accepted values, default, and whether it can be given per layer.

    ``index`` names the counter that per-layer keys follow: ``"layer"`` (``num_layers``), ``"block"``
    (``num_blocks``) or ``"dense"`` (``num_dense``); None for a key that has no per-layer form.
    """

    name: str
    kind: type
    default: Any
    models: tuple[str, ...] = MODELS
    choices: tuple[Any, ...] | None = None
    low: float | None = None  # inclusive
    high: float | None = None  # inclusive unless high_open
    high_open: bool = False
    index: str | None = None
    optional: bool = False  # None is accepted (means "off")
    doc: str = ""


_COMMON = (
    Param("model", str, None, choices=MODELS, doc="which builder: mlp or cnn"),
    Param("optimizer", str, "adam", choices=OPTIMIZERS),
    Param("learning_rate", float, None, low=1e-7, high=10.0, optional=True,
          doc="None: lr_<optimizer> if given, else the optimizer's default"),
    *(Param(f"lr_{name}", float, None, low=1e-7, high=10.0, optional=True,
            doc=f"learning rate used when optimizer is {name}") for name in OPTIMIZERS),
    Param("momentum", float, 0.0, low=0.0, high=1.0, high_open=True, doc="sgd only"),
    Param("nesterov", bool, False, doc="sgd only"),
    Param("batch_size", int, 128, low=1, high=65536),
    Param("kernel_initializer", str, "auto", choices=INITIALIZERS,
          doc="auto: he_normal after relu-like activations, glorot_uniform otherwise"),
    Param("l2", float, 0.0, low=0.0, high=1.0, doc="L2 weight penalty on dense and conv kernels"),
    Param("epochs", int, None, low=1, high=100_000, optional=True,
          doc="epochs of a cross-validation fold's fit, and of `rtune train` (search trials: --max-epochs)"),
    Param("lr_schedule", str, "constant", choices=LR_SCHEDULES,
          doc="constant, or cosine: decays per epoch from learning_rate to 0 over the trial's maximum epochs"),
    Param("repeat", int, 0, low=0, high=1_000_000,
          doc="which repeat of a grid point (--num-samples N on a grid): it changes the trial's seeds only"),
    Param("augment_flip", bool, False, doc="random horizontal flips while training (image inputs)"),
    Param("augment_translate", float, 0.0, low=0.0, high=0.5,
          doc="random whole-pixel shifts up to this fraction of height and width (rounded), zero-filled, while "
          "training (image inputs); 0 = off"),
)  # fmt: skip

_MLP = (
    Param("num_layers", int, 2, models=("mlp",), low=0, high=16, doc="hidden layers; 0 = softmax regression"),
    Param("units", int, 256, models=("mlp",), low=1, high=65536, index="layer"),
    Param("activation", str, "relu", choices=ACTIVATIONS, index="layer"),
    Param("dropout", float, 0.0, low=0.0, high=1.0, high_open=True, index="layer",
          doc="MLP: after each hidden layer; CNN: after each block's pooling"),
    Param("batch_norm", bool, False, index="layer", doc="MLP: per layer; CNN: per block"),
    Param("max_norm", float, None, models=("mlp",), low=1e-6, high=1e6, optional=True,
          doc="max-norm constraint on hidden kernels; None = off"),
)  # fmt: skip

_CNN = (
    Param("num_blocks", int, 2, models=("cnn",), low=1, high=16),
    Param("convs_per_block", int, 2, models=("cnn",), low=1, high=8, index="block"),
    Param("filters", int, 32, models=("cnn",), low=1, high=4096, index="block",
          doc="filters of block 1; doubles with each further block unless filters_<i> is given"),
    Param("kernel_size", int, 3, models=("cnn",), low=1, high=31, index="block"),
    Param("padding", str, "same", models=("cnn",), choices=("same", "valid"), index="block"),
    Param("pool", str, "max", models=("cnn",), choices=("max", "avg", "none"), index="block",
          doc="2x2 pooling at the end of each block"),
    Param("num_dense", int, 1, models=("cnn",), low=0, high=4, doc="dense layers before the softmax"),
    Param("dense_units", int, 256, models=("cnn",), low=1, high=65536, index="dense"),
    Param("dense_dropout", float, 0.0, models=("cnn",), low=0.0, high=1.0, high_open=True, index="dense"),
    Param("dense_batch_norm", bool, False, models=("cnn",), index="dense"),
)  # fmt: skip

PARAMS: dict[str, Param] = {p.name: p for p in (*_COMMON, *_MLP, *_CNN)}
_PER_OPTIMIZER_RATES = {f"lr_{name}" for name in OPTIMIZERS}
# The per-layer parameters of "activation", "dropout" and "batch_norm" follow the model's own counter.
_COUNTERS = {"layer": "num_layers", "block": "num_blocks", "dense": "num_dense"}
_INDEXED = re.compile(r"^(?P<base>[a-z_0-9]+?)_(?P<index>\d+)$")
# Keys that decide feature-map sizes: the ones whose combinations spaces.validate_space enumerates.
SHAPE_KEYS = ("num_blocks", "convs_per_block", "kernel_size", "padding", "pool")


def is_log_scale(key: str) -> bool:
    """Whether a hyperparameter is best compared on a log scale (learning rates, weight penalties)."""
    return key in ("learning_rate", "l2") or key in _PER_OPTIMIZER_RATES


def _counter_for(param: Param, model: str) -> str | None:
    if param.index is None:
        return None
    if model == "cnn" and param.index == "layer":
        return "num_blocks"  # activation/dropout/batch_norm are per block in a CNN
    return _COUNTERS[param.index]


def split_key(key: str) -> tuple[str, int | None]:
    """``"units_2"`` -> ``("units", 2)``; ``"units"`` -> ``("units", None)``; ``"lr_sgd"`` stays whole."""
    if key in PARAMS:
        return key, None
    match = _INDEXED.match(key)
    if match and match["base"] in PARAMS and PARAMS[match["base"]].index is not None:
        return match["base"], int(match["index"])
    return key, None


def is_known_key(key: str, model: str) -> bool:
    """Whether ``key`` names a hyperparameter of ``model`` (shared or per-layer form)."""
    base, index = split_key(key)
    param = PARAMS.get(base)
    if param is None or model not in param.models:
        return False
    return index is None or index >= 1


def governing_key(key: str, model: str) -> str | None:
    """The key whose value decides whether ``key`` is used at all (:func:`is_used`): the depth counter of a
    per-layer key (``units_3``: ``num_layers``; ``dense_units``: ``num_dense``), ``optimizer`` for
    ``lr_<optimizer>``, ``momentum`` and ``nesterov``; None for a key every model of ``model`` reads. A
    governing key is itself never governed, so conditions are one level deep."""
    base, _ = split_key(key)
    if key in _PER_OPTIMIZER_RATES or key in ("momentum", "nesterov"):
        return "optimizer"
    param = PARAMS.get(base)
    if param is None or model not in param.models:
        return None
    if model == "cnn" and key == "activation":
        return None  # the dense head's activation, whatever the depth
    return _counter_for(param, model)


def is_used(key: str, config: Mapping[str, Any]) -> bool:
    """Whether the model built from ``config`` reads ``key`` (its value may change the model or its
    training). ``config`` needs the model and :func:`governing_key`'s key; missing keys take defaults.

    Keys of layers beyond the depth are not used; ``lr_sgd`` only under SGD without a ``learning_rate``;
    ``momentum``/``nesterov`` only under SGD; a shared per-layer key (``units``) not at depth 0.
    """
    parent = governing_key(key, config["model"])
    if parent is None:
        return True
    value = get(config, parent)
    if parent == "optimizer":
        wanted = "sgd" if key in ("momentum", "nesterov") else key.removeprefix("lr_")
        return value == wanted and (key in ("momentum", "nesterov") or config.get("learning_rate") is None)
    _, index = split_key(key)
    return int(value) >= (index or 1)


def normalize(config: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-Python copy of ``config``: numpy scalars become int/float/bool/str, arrays lists."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {str(key): plain(value) for key, value in config.items()}


def _check_value(key: str, param: Param, value: Any) -> Any:
    """``value`` converted to ``param.kind`` if it is acceptable; ModelConfigError otherwise."""
    if value is None and param.optional:
        return None
    if param.kind is bool:
        ok = isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
        converted = bool(value) if ok else None
    elif param.kind is int:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        converted = int(value) if ok else None
    elif param.kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
        converted = float(value) if ok else None
    else:
        ok = isinstance(value, str)
        converted = value.lower() if ok else None
    if not ok:
        raise ModelConfigError(f"Config key {key!r} must be {param.kind.__name__}, got {value!r}.")
    if param.choices is not None and converted not in param.choices:
        raise ModelConfigError(
            f"Config key {key!r} has value {value!r}; accepted values: {', '.join(map(str, param.choices))}."
        )
    too_low = param.low is not None and converted < param.low
    too_high = param.high is not None and (
        converted >= param.high if param.high_open else converted > param.high
    )
    if too_low or too_high:
        upper = f"{param.high})" if param.high_open else f"{param.high}]"
        raise ModelConfigError(f"Config key {key!r} is {value!r}, outside [{param.low}, {upper}.")
    return converted


def validate(config: Mapping[str, Any], *, allow_unknown: bool = False) -> dict[str, Any]:
    """The normalised, checked config. Unknown keys are an error unless ``allow_unknown``.

    Raises:
        ModelConfigError: a missing or unknown ``model``, an unknown key, or a value of the wrong type
            or outside its accepted values; the message names the key and what is accepted.
    """
    config = normalize(config)
    model = config.get("model")
    if model not in MODELS:
        raise ModelConfigError(f"Config key 'model' is {model!r}; it must be one of: {', '.join(MODELS)}.")
    checked: dict[str, Any] = {}
    for key, value in config.items():
        base, _ = split_key(key)
        if not is_known_key(key, model):
            if allow_unknown:
                checked[key] = value
                continue
            known = sorted(p.name for p in PARAMS.values() if model in p.models)
            raise ModelConfigError(
                f"Unknown config key {key!r} for a {model} model. Known keys: {', '.join(known)} "
                "(per-layer forms such as units_2 for keys that have them)."
            )
        checked[key] = _check_value(key, PARAMS[base], value)
    return checked


def get(config: Mapping[str, Any], name: str, index: int | None = None) -> Any:
    """The value of ``name`` (for layer ``index`` when given): per-layer key, shared key, then default.

    ``filters`` is special: without ``filters_<i>``, block i has ``filters * 2**(i-1)`` filters.
    """
    if index is not None and f"{name}_{index}" in config:
        return config[f"{name}_{index}"]
    if name == "filters" and index is not None:
        return int(config.get("filters", PARAMS["filters"].default)) * 2 ** (index - 1)
    return config.get(name, PARAMS[name].default)


def learning_rate(config: Mapping[str, Any]) -> float:
    """``learning_rate`` if set, else ``lr_<optimizer>``, else the optimizer's default."""
    optimizer = get(config, "optimizer")
    for key in ("learning_rate", f"lr_{optimizer}"):
        if config.get(key) is not None:
            return float(config[key])
    return DEFAULT_LEARNING_RATES[optimizer]


def effective(config: Mapping[str, Any], *, collapse_layers: bool = True) -> dict[str, Any]:
    """The config a model is really built from: defaults filled in, unused keys dropped.

    Used to print and store the best configuration in readable form (no choice indices, no keys of
    layers beyond the depth, one learning rate). With ``collapse_layers`` a per-layer value that every
    layer shares is given once under the shared key (``activation``); without it, always per layer
    (``activation_1``, ``activation_2``), so that the configs of different trials have the same keys.
    """
    config = validate(config)
    model = config["model"]
    out: dict[str, Any] = {"model": model, "optimizer": get(config, "optimizer")}
    out["learning_rate"] = learning_rate(config)
    if out["optimizer"] == "sgd":
        out["momentum"] = get(config, "momentum")
        out["nesterov"] = get(config, "nesterov")
    for name in ("batch_size", "kernel_initializer", "l2"):
        out[name] = get(config, name)
    shared = [p for p in PARAMS.values() if model in p.models and p.index is None and p.name not in out]
    for param in shared:
        if param.name in _PER_OPTIMIZER_RATES or param.name in ("learning_rate", "momentum", "nesterov"):
            continue
        if param.name == "epochs" and config.get("epochs") is None:
            continue  # only cross-validation trials have it
        out[param.name] = get(config, param.name)
    for param in PARAMS.values():
        counter = _counter_for(param, model)
        if counter is None or model not in param.models:
            continue
        depth = int(out.get(counter, get(config, counter)))
        values = [get(config, param.name, i) for i in range(1, depth + 1)]
        if collapse_layers and param.name != "filters" and len(set(values)) == 1:
            out[param.name] = values[0]  # every layer agrees: one shared key reads best
        else:
            out.update({f"{param.name}_{i}": value for i, value in enumerate(values, start=1)})
    if model == "cnn":
        out.setdefault("activation", get(config, "activation"))  # the dense head's activation
    return out


# What a trial's compiled training program reads at run time rather than holding as a constant: the dropout
# rates and the L2 factor (rtune_fashion.runtime_values), and the learning rate (the optimizer's variable, which
# the schedule sets). Whether dropout or L2 is on at all shapes the program.
RUNTIME_VALUES = ("dropout", "dense_dropout", "l2")
_NOT_IN_THE_PROGRAM = ("learning_rate", "lr_schedule", "epochs", "repeat", "kernel_initializer")


def architecture(config: Mapping[str, Any]) -> dict[str, Any]:
    """What of ``config`` shapes its compiled training program (layers, widths, kernels, batch size, optimizer,
    augmentation, which layers have dropout, whether L2 is on): configs with equal architectures compile to
    one program. Every per-layer value under its own key.

    Raises:
        ModelConfigError: an invalid config.
    """
    out: dict[str, Any] = {}
    for key, value in effective(config, collapse_layers=False).items():
        name = split_key(key)[0]
        if name not in _NOT_IN_THE_PROGRAM:
            out[key] = value > 0 if name in RUNTIME_VALUES else value
    return out

"""Pure Keras 3 model builders: a config dict in, a compiled ``keras.Model`` out.

No data loading, no Ray, no globals, and only the backend-neutral Keras API, so the same builders run
under TensorFlow, JAX or PyTorch. See :mod:`rtune_fashion.config` for the keys and their defaults. Dropout
rates and the L2 factor are variables of their layers (:mod:`rtune_fashion.runtime_values`), so the models of
one :func:`rtune_fashion.config.architecture` compile to one program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras

from rtune_fashion import config as cfg
from rtune_fashion.augment import RandomShift
from rtune_fashion.errors import ModelConfigError
from rtune_fashion.runtime_values import RuntimeDropout, RuntimeL2Conv2D, RuntimeL2Dense, parameter_count

FASHION_INPUT_SHAPE = (28, 28, 1)
FASHION_CLASSES = 10
_RELU_LIKE = {"relu", "elu", "gelu", "swish", "leaky_relu"}


def _initializer(config: Mapping[str, Any], activation: str) -> str:
    chosen = cfg.get(config, "kernel_initializer")
    if chosen != "auto":
        return chosen
    if activation in _RELU_LIKE:
        return "he_normal"
    return "lecun_normal" if activation == "selu" else "glorot_uniform"


def build_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """The config's optimizer (sgd with its momentum and nesterov) at the config's learning rate."""
    name = cfg.get(config, "optimizer")
    rate = cfg.learning_rate(config)
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=rate, momentum=cfg.get(config, "momentum"), nesterov=cfg.get(config, "nesterov")
        )
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "nadam": keras.optimizers.Nadam,
                  "adagrad": keras.optimizers.Adagrad, "adadelta": keras.optimizers.Adadelta,
                  "adamax": keras.optimizers.Adamax}  # fmt: skip
    return optimizers[name](learning_rate=rate)


# ---------------------------------------------------------------------------------------------------
# Shapes


@dataclass(frozen=True)
class LayerShape:
    name: str
    shape: tuple[int, ...]


def cnn_feature_maps(config: Mapping[str, Any], input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE) -> list[LayerShape]:
    """The output shape of every convolution and pooling layer, computed without building anything.

    Raises:
        ModelConfigError: when a layer would shrink the feature map below 1x1; the message names the
            layer, its input shape and the keys to change.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    shapes: list[LayerShape] = []
    for block in range(1, int(cfg.get(config, "num_blocks")) + 1):
        filters = int(cfg.get(config, "filters", block))
        kernel = int(cfg.get(config, "kernel_size", block))
        padding = cfg.get(config, "padding", block)
        for conv in range(1, int(cfg.get(config, "convs_per_block", block)) + 1):
            name = f"block{block}_conv{conv}"
            if padding == "valid":
                new_h, new_w = height - kernel + 1, width - kernel + 1
                if new_h < 1 or new_w < 1:
                    raise ModelConfigError(
                        f"Impossible CNN: {name} ({kernel}x{kernel}, valid padding) gets a {height}x{width} "
                        f"feature map and would output {new_h}x{new_w}. Fix: use padding 'same', a smaller "
                        "kernel_size, or fewer num_blocks / convs_per_block. Layer table: rtune describe."
                    )
                height, width = new_h, new_w
            shapes.append(LayerShape(name, (height, width, filters)))
        if cfg.get(config, "pool", block) != "none":
            if height < 2 or width < 2:
                raise ModelConfigError(
                    f"Impossible CNN: block{block}_pool (2x2) gets a {height}x{width} feature map and would "
                    "output 0x0. Fix: fewer num_blocks, padding 'same', or pool 'none' for that block."
                )
            height, width = height // 2, width // 2
            shapes.append(LayerShape(f"block{block}_pool", (height, width, filters)))
    return shapes


def forward_flops(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE,
    num_classes: int = FASHION_CLASSES,
) -> float:
    """Multiply-adds x 2 of one forward pass of one example through the convolutions and dense layers,
    computed from the config alone (nothing is built). A training step costs about 3x this per example.

    It ranks configs by cost and, with one measured rate (:mod:`rtune_fashion.budget`), predicts epoch
    times; pooling, batch norm and activations are left out (memory-bound, a few percent on our models).

    Raises:
        ModelConfigError: an invalid config or impossible CNN shapes.
    """
    config = cfg.validate(config)
    flops = 0.0
    features = 1
    for d in input_shape:
        features *= int(d)
    if config["model"] == "cnn":
        channels = int(input_shape[-1]) if len(input_shape) == 3 else 1
        for layer in cnn_feature_maps(config, input_shape):
            height, width, filters = layer.shape
            if "_conv" in layer.name:
                block = int(layer.name.removeprefix("block").split("_")[0])
                kernel = int(cfg.get(config, "kernel_size", block))
                flops += 2.0 * height * width * filters * kernel * kernel * channels
                channels = filters
            features = height * width * filters
        widths = [int(cfg.get(config, "dense_units", i)) for i in range(1, int(cfg.get(config, "num_dense")) + 1)]
    else:
        widths = [int(cfg.get(config, "units", i)) for i in range(1, int(cfg.get(config, "num_layers")) + 1)]
    for units in [*widths, 1 if num_classes == 2 else num_classes]:
        flops += 2.0 * features * units
        features = units
    return flops


# ---------------------------------------------------------------------------------------------------
# Builders


def _augmented(x: Any, config: Mapping[str, Any]) -> Any:
    """The input, randomly flipped and shifted while training when the config asks (identity at inference).

    Raises:
        ModelConfigError: augmentation asked for an input that is not an image (height, width, channels).
    """
    flip, shift = cfg.get(config, "augment_flip"), cfg.get(config, "augment_translate")
    if (flip or shift > 0) and len(x.shape) != 4:
        raise ModelConfigError(
            f"augment_flip / augment_translate need image inputs (height, width, channels); this input has shape "
            f"{tuple(x.shape[1:])}. Fix: leave both off for tabular data."
        )
    if flip:
        x = keras.layers.RandomFlip("horizontal", name="augment_flip")(x)
    if shift > 0:
        x = RandomShift(shift, name="augment_translate")(x)
    return x


def _output(x: Any, num_classes: int) -> Any:
    """Two classes: one sigmoid unit (binary cross-entropy); more: a softmax over the classes."""
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="sigmoid")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="softmax")(x)


def _compile(model: keras.Model, config: Mapping[str, Any]) -> keras.Model:
    binary = model.output_shape[-1] == 1
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    model.compile(optimizer=build_optimizer(config), loss=loss, metrics=["accuracy"])
    return model


def _normalised(x: Any, layer: keras.layers.Layer, name: str, activation: str, batch_norm: bool) -> Any:
    """``layer``, then batch norm if asked (the layer then has no bias), then the activation."""
    x = layer(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def _dense_layer(
    x: Any,
    config: Mapping[str, Any],
    name: str,
    *,
    units: int,
    activation: str,
    batch_norm: bool,
    dropout: float,
    max_norm: float | None = None,
) -> Any:
    """Dense [BatchNorm] activation [Dropout]: a hidden layer of the MLP or of the CNN's head."""
    dense = RuntimeL2Dense(
        units,
        l2=cfg.get(config, "l2"),
        kernel_initializer=_initializer(config, activation),
        kernel_constraint=keras.constraints.MaxNorm(max_norm) if max_norm else None,
        use_bias=not batch_norm,
        name=name,
    )
    x = _normalised(x, dense, name, activation, batch_norm)
    return RuntimeDropout(dropout, name=f"{name}_dropout")(x) if dropout > 0 else x


def build_mlp(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE,
    num_classes: int = FASHION_CLASSES,
) -> keras.Model:
    """Dense network: [augmentation] ``num_layers`` x (Dense [BatchNorm] activation [Dropout]), then softmax (or
    one sigmoid unit with binary cross-entropy for two classes)."""
    config = cfg.validate(config)
    if config["model"] != "mlp":
        raise ModelConfigError(f"build_mlp got a config with model={config['model']!r}; use build_model.")
    max_norm = cfg.get(config, "max_norm")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Flatten(name="flatten")(_augmented(inputs, config))
    for i in range(1, int(cfg.get(config, "num_layers")) + 1):
        x = _dense_layer(
            x, config, f"dense{i}",
            units=cfg.get(config, "units", i),
            activation=cfg.get(config, "activation", i),
            batch_norm=cfg.get(config, "batch_norm", i),
            dropout=cfg.get(config, "dropout", i),
            max_norm=max_norm,
        )  # fmt: skip
    return _compile(keras.Model(inputs, _output(x, num_classes), name="mlp"), config)


def build_cnn(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE,
    num_classes: int = FASHION_CLASSES,
) -> keras.Model:
    """VGG-style network: [augmentation] ``num_blocks`` x (convs [BatchNorm] activation, pool, [Dropout]),
    flatten, ``num_dense`` x (Dense [BatchNorm] activation [Dropout]), softmax.

    Raises:
        ModelConfigError: invalid values, or a configuration that shrinks a feature map below 1x1
            (checked before any layer is built).
    """
    config = cfg.validate(config)
    if config["model"] != "cnn":
        raise ModelConfigError(f"build_cnn got a config with model={config['model']!r}; use build_model.")
    cnn_feature_maps(config, input_shape)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = _augmented(inputs, config)
    for block in range(1, int(cfg.get(config, "num_blocks")) + 1):
        activation = cfg.get(config, "activation", block)
        batch_norm = cfg.get(config, "batch_norm", block)
        for conv in range(1, int(cfg.get(config, "convs_per_block", block)) + 1):
            name = f"block{block}_conv{conv}"
            conv_layer = RuntimeL2Conv2D(
                cfg.get(config, "filters", block),
                cfg.get(config, "kernel_size", block),
                l2=cfg.get(config, "l2"),
                padding=cfg.get(config, "padding", block),
                kernel_initializer=_initializer(config, activation),
                use_bias=not batch_norm,
                name=name,
            )
            x = _normalised(x, conv_layer, name, activation, batch_norm)
        pool = cfg.get(config, "pool", block)
        if pool != "none":
            layer = keras.layers.MaxPooling2D if pool == "max" else keras.layers.AveragePooling2D
            x = layer(2, name=f"block{block}_pool")(x)
        if cfg.get(config, "dropout", block) > 0:
            x = RuntimeDropout(cfg.get(config, "dropout", block), name=f"block{block}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    dense_activation = cfg.get(config, "activation")
    for i in range(1, int(cfg.get(config, "num_dense")) + 1):
        x = _dense_layer(
            x, config, f"dense{i}",
            units=cfg.get(config, "dense_units", i),
            activation=dense_activation,
            batch_norm=cfg.get(config, "dense_batch_norm", i),
            dropout=cfg.get(config, "dense_dropout", i),
        )  # fmt: skip
    outputs = _output(x, num_classes)
    return _compile(keras.Model(inputs, outputs, name="cnn"), config)


_BUILDERS = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE,
    num_classes: int = FASHION_CLASSES,
) -> keras.Model:
    """The compiled model for ``config["model"]`` (``mlp`` or ``cnn``)."""
    model = cfg.validate(config)["model"]
    return _BUILDERS[model](config, input_shape, num_classes)


def average_of(members: list[keras.Model]) -> keras.Model:
    """One compiled model whose output is the mean of ``members``' outputs (class probabilities): an
    ensemble of trainings of one config. One member is returned as it is. The members keep their weights
    (they are shared, not copied, and frozen); each is nested under the name ``member_<i>``, so the whole saves and
    loads as one ``.keras`` file (with rtune_fashion imported, as for any model with its layers)."""
    if len(members) == 1:
        return members[0]
    inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
    outputs = [keras.Model(m.input, m.output, name=f"member_{i}")(inputs) for i, m in enumerate(members)]
    model = keras.Model(inputs, keras.layers.Average(name="mean_probability")(outputs), name="ensemble")
    model.trainable = False  # evaluated, never trained: no optimizer state to save (or to warn about on load)
    model.compile(loss=members[0].loss, metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------------------------------
# The layer table


@dataclass(frozen=True)
class LayerRow:
    layer: str
    output_shape: tuple[int, ...]
    activation_size: int  # values per example leaving the layer
    parameters: int


def describe(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...] = FASHION_INPUT_SHAPE,
    num_classes: int = FASHION_CLASSES,
) -> list[LayerRow]:
    """The article's activation-shape table: one row per layer of the built model, input first."""
    model = build_model(config, input_shape, num_classes)
    rows = [LayerRow("input", tuple(input_shape), _size(input_shape), 0)]
    for layer in model.layers[1:]:
        shape = tuple(int(d) for d in layer.output.shape[1:])
        rows.append(LayerRow(layer.name, shape, _size(shape), parameter_count(layer)))
    keras.backend.clear_session()
    return rows


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for d in shape:
        size *= int(d)
    return size


def format_table(rows: list[LayerRow]) -> str:
    """``rows`` as an aligned text table with a total-parameters line."""
    header = ("layer", "output shape", "activations", "parameters")
    cells = [(r.layer, "x".join(map(str, r.output_shape)), f"{r.activation_size:,}", f"{r.parameters:,}") for r in rows]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(4)]

    def line(values: tuple[str, ...]) -> str:
        padded = (v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True)))
        return "  ".join(padded)

    out = [line(header), *(line(c) for c in cells)]
    out.append(f"total parameters: {sum(r.parameters for r in rows):,}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------
# The articles' fixed architectures (../shared/ARTICLES.md), as configs

PRESETS: dict[str, dict[str, Any]] = {
    # A: softmax regression baseline, SGD lr 0.1
    "baseline_softmax": {"model": "mlp", "num_layers": 0, "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 128},
    # A: Hyperas' best dense network
    "hyperas_best_mlp": {
        "model": "mlp", "num_layers": 3, "activation": "relu",
        "units_1": 1024, "dropout_1": 0.63, "units_2": 1024, "dropout_2": 0.35, "units_3": 256, "dropout_3": 0.42,
        "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 256,
    },
    # D: LeNet-like: conv 8 3x3 same, pool, conv 16 5x5 valid, pool, dense 120, dense 84
    "lenet": {
        "model": "cnn", "num_blocks": 2, "convs_per_block": 1,
        "filters_1": 8, "kernel_size_1": 3, "padding_1": "same",
        "filters_2": 16, "kernel_size_2": 5, "padding_2": "valid",
        "num_dense": 2, "dense_units_1": 120, "dense_units_2": 84, "optimizer": "adam", "learning_rate": 1e-3,
    },
    # D: three conv-pool blocks of 32-64-128 filters, dense 64
    "conv_pool_x3": {
        "model": "cnn", "num_blocks": 3, "convs_per_block": 1, "filters": 32, "padding": "valid",
        "num_dense": 1, "dense_units": 64, "optimizer": "adam", "learning_rate": 1e-3,
    },
    # D: VGG-like: conv 16, conv 16, pool, conv 32, conv 32, pool, dense 512 (overfits)
    "vgg_like": {
        "model": "cnn", "num_blocks": 2, "convs_per_block": 2, "filters": 16, "padding": "same",
        "num_dense": 1, "dense_units": 512, "optimizer": "adam", "learning_rate": 1e-3,
    },
    # D: Hyperas' best CNN: 32-32-64-64, BN in block 2, dropouts 0.2/0.3, dense 256 + BN + dropout 0.7
    "hyperas_best_cnn": {
        "model": "cnn", "num_blocks": 2, "convs_per_block": 2, "filters": 32, "padding": "same",
        "batch_norm_1": False, "batch_norm_2": True, "dropout_1": 0.2, "dropout_2": 0.3,
        "num_dense": 1, "dense_units": 256, "dense_batch_norm": True, "dense_dropout": 0.7,
        "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 256,
    },
    # rtune's best MLP (issue 8, docs/results.md): mlp_wide, hyperopt + ASHA, 24 trials of up to 30 epochs,
    # seed 0; its retraining tested 0.9004
    "rtune_best_mlp": {
        "model": "mlp", "num_layers": 3, "units": 512, "activation": "relu", "dropout": 0.1014995778151346,
        "batch_norm": False, "optimizer": "nadam", "learning_rate": 0.0028806355153665583, "lr_schedule": "cosine",
        "batch_size": 256, "epochs": 30,
    },
    # The winner of the cnn_large BOHB search on an H100 (docs/results.md): 48-96 filters, flips, cosine.
    "rtune_best_cnn": {
        "model": "cnn", "num_blocks": 2, "convs_per_block": 2, "filters": 48, "kernel_size": 3, "padding": "same",
        "batch_norm": True, "dropout": 0.2268806968277, "num_dense": 1, "dense_units": 128, "dense_batch_norm": True,
        "dense_dropout": 0.2561246459114, "optimizer": "adam", "learning_rate": 0.0012077214353,
        "lr_schedule": "cosine", "l2": 1e-05, "batch_size": 128, "augment_flip": True, "epochs": 30,
    },
}  # fmt: skip


def preset(name: str) -> dict[str, Any]:
    """A copy of the named preset config; ModelConfigError listing the names for an unknown one."""
    if name not in PRESETS:
        raise ModelConfigError(f"Unknown preset {name!r}. Presets: {', '.join(PRESETS)}.")
    return dict(PRESETS[name])

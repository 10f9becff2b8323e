from __future__ import annotations

import keras
import numpy as np
import pytest

from rtune_fashion import config as cfg
from rtune_fashion.errors import ModelConfigError
from rtune_fashion.models import (
    PRESETS,
    build_cnn,
    build_mlp,
    build_model,
    build_optimizer,
    cnn_feature_maps,
    describe,
    format_table,
    preset,
)


def _layer(model: keras.Model, name: str) -> keras.layers.Layer:
    return model.get_layer(name)


def test_numpy_scalars_are_normalised_and_build() -> None:
    config = {"model": "mlp", "num_layers": np.int64(2), "units": np.int64(64), "dropout": np.float64(0.25),
              "batch_norm": np.bool_(True), "optimizer": np.str_("adam")}  # fmt: skip
    model = build_mlp(config)
    assert _layer(model, "dense1").units == 64 and type(_layer(model, "dense1").units) is int
    assert _layer(model, "dense2_dropout").rate == 0.25
    assert isinstance(_layer(model, "dense1_bn"), keras.layers.BatchNormalization)
    assert all(type(v) in (int, float, bool, str) for v in cfg.normalize(config).values())


def test_mlp_per_layer_keys_override_shared_ones_and_depth_limits_them() -> None:
    model = build_mlp({"model": "mlp", "num_layers": 2, "units": 32, "units_2": 16, "units_3": 999,
                       "activation_2": "sigmoid"})  # fmt: skip
    assert [_layer(model, f"dense{i}").units for i in (1, 2)] == [32, 16]
    assert "dense3" not in [layer.name for layer in model.layers]
    assert isinstance(_layer(model, "dense1").kernel_initializer, keras.initializers.HeNormal)  # relu
    assert isinstance(_layer(model, "dense2").kernel_initializer, keras.initializers.GlorotUniform)  # sigmoid


def test_mlp_l2_and_max_norm() -> None:
    model = build_mlp({"model": "mlp", "num_layers": 1, "units": 8, "l2": 1e-3, "max_norm": 3.0,
                       "kernel_initializer": "lecun_uniform"})  # fmt: skip
    dense = _layer(model, "dense1")
    assert isinstance(dense.kernel_constraint, keras.constraints.MaxNorm) and dense.kernel_constraint.max_value == 3
    assert dense.l2 == 1e-3 and float(dense.l2_value) == pytest.approx(1e-3)  # a runtime value (test_runtime_values.py)
    assert isinstance(dense.kernel_initializer, keras.initializers.LecunUniform)


def test_softmax_regression_has_no_hidden_layer() -> None:
    rows = describe(preset("baseline_softmax"))
    assert [r.layer for r in rows] == ["input", "flatten", "softmax"]
    assert rows[-1].parameters == 784 * 10 + 10


def test_cnn_blocks_filters_double_and_head() -> None:
    model = build_cnn({"model": "cnn", "num_blocks": 3, "convs_per_block": 2, "filters": 8, "batch_norm_2": True,
                       "dropout": 0.1, "num_dense": 2, "dense_units": 20, "dense_dropout_2": 0.5,
                       "augment_flip": True, "augment_translate": 0.1})  # fmt: skip
    assert [_layer(model, f"block{b}_conv1").filters for b in (1, 2, 3)] == [8, 16, 32]
    names = [layer.name for layer in model.layers]
    assert "block2_conv1_bn" in names and "block1_conv1_bn" not in names
    assert {"augment_flip", "augment_translate", "dense2_dropout", "block3_dropout"} <= set(names)
    assert "dense1_dropout" not in names
    assert model.output_shape == (None, 10)


def test_cnn_for_another_image_shape_and_class_count() -> None:
    # Article C: 48x48 grey images, 4 classes
    model = build_model(preset("vgg_like"), input_shape=(48, 48, 1), num_classes=4)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 4)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("baseline_softmax", 7_850),
        # conv 8*(9+1) + conv 16*(8*25+1) + dense 400*120+120 + 120*84+84 + 84*10+10
        ("lenet", 80 + 3_216 + 48_120 + 10_164 + 850),
        ("hyperas_best_mlp", (784 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 256 + 256) + 2_570),
        ("rtune_best_mlp", (784 * 512 + 512) + 2 * (512 * 512 + 512) + 5_130),
        # convs and the dense layer have no bias before batch norm (4 weights per channel):
        # 9*1*48 + 9*48*48 + 9*48*96 + 9*96*96, BN 2*(4*48) + 2*(4*96), dense 7*7*96*128, BN 4*128, softmax
        ("rtune_best_cnn", 432 + 20_736 + 41_472 + 82_944 + 1_152 + 602_112 + 512 + 1_290),
    ],
)
def test_preset_parameter_counts_match_hand_counts(name: str, parameters: int) -> None:
    assert sum(row.parameters for row in describe(preset(name))) == parameters


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_one_step(name: str) -> None:
    model = build_model(preset(name))
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    history = model.fit(x, np.arange(16) % 10, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_describe_table_matches_the_article_shapes() -> None:
    rows = {row.layer: row for row in describe(preset("lenet"))}
    assert rows["block1_pool"].output_shape == (14, 14, 8)
    assert rows["block2_conv1"].output_shape == (10, 10, 16)  # 5x5 valid
    assert rows["block2_pool"].output_shape == (5, 5, 16) and rows["block2_pool"].activation_size == 400
    text = format_table(describe(preset("lenet")))
    assert "block2_pool" in text and "5x5x16" in text and "total parameters: 62,430" in text


def test_feature_maps_agree_with_keras() -> None:
    config = {"model": "cnn", "num_blocks": 3, "padding": "valid", "convs_per_block": 1, "filters": 4}
    computed = {s.name: s.shape for s in cnn_feature_maps(config)}
    built = {row.layer: row.output_shape for row in describe(config)}
    assert computed == {name: built[name] for name in computed}


def test_impossible_cnn_is_refused_naming_layer_and_shape() -> None:
    config = {"model": "cnn", "num_blocks": 4, "convs_per_block": 2, "padding": "valid", "kernel_size": 3}
    with pytest.raises(ModelConfigError, match=r"block3_conv2 \(3x3, valid padding\) gets a 2x2 feature map"):
        build_cnn(config)
    with pytest.raises(ModelConfigError, match=r"block5_pool \(2x2\) gets a 1x1 feature map"):
        cnn_feature_maps({"model": "cnn", "num_blocks": 5, "convs_per_block": 1})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": "rnn"}, r"'model' is 'rnn'; it must be one of: mlp, cnn"),
        ({"model": "mlp", "unit": 3}, r"Unknown config key 'unit' for a mlp model"),
        ({"model": "mlp", "filters": 3}, r"Unknown config key 'filters' for a mlp model"),
        ({"model": "mlp", "optimizer": "adamw"}, r"'optimizer' has value 'adamw'; accepted values: adam, sgd"),
        ({"model": "mlp", "dropout": 1.0}, r"'dropout' is 1.0, outside \[0.0, 1.0\)"),
        ({"model": "mlp", "units_2": 0}, r"'units_2' is 0, outside \[1, 65536\]"),
        ({"model": "mlp", "units": 2.5}, r"'units' must be int, got 2.5"),
        ({"model": "cnn", "padding": "full"}, r"accepted values: same, valid"),
        ({"model": "mlp", "learning_rate": float("nan")}, r"'learning_rate' must be float, got nan"),
    ],
)
def test_bad_config_values_name_key_and_accepted_values(config: dict, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        build_model(config)


def test_optimizers_and_per_optimizer_learning_rates() -> None:
    sgd = build_optimizer({"model": "mlp", "optimizer": "sgd", "momentum": 0.9, "nesterov": True,
                           "lr_sgd": 0.05, "lr_adam": 0.5})  # fmt: skip
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    assert float(sgd.learning_rate) == pytest.approx(0.05)
    assert float(build_optimizer({"model": "mlp", "optimizer": "adam"}).learning_rate) == pytest.approx(1e-3)
    assert isinstance(build_optimizer({"model": "mlp", "optimizer": "nadam"}), keras.optimizers.Nadam)
    assert isinstance(build_optimizer({"model": "mlp", "optimizer": "rmsprop"}), keras.optimizers.RMSprop)


def test_effective_config_is_readable() -> None:
    config = {"model": "mlp", "num_layers": np.int64(2), "units_1": 64, "units_2": 64, "units_3": 512,
              "optimizer": "rmsprop", "lr_rmsprop": 0.01, "lr_adam": 0.1, "dropout_1": 0.1, "dropout_2": 0.2}
    readable = cfg.effective(config)
    assert readable["units"] == 64 and "units_3" not in readable  # agreeing layers collapse, extra ones drop
    assert readable["dropout_1"] == 0.1 and readable["dropout_2"] == 0.2
    assert readable["learning_rate"] == 0.01 and "lr_adam" not in readable
    assert readable["lr_schedule"] == "constant"  # not taken for a per-optimizer rate
    assert cfg.effective({**config, "lr_schedule": "cosine"})["lr_schedule"] == "cosine"
    assert cfg.is_log_scale("lr_adam") and not cfg.is_log_scale("lr_schedule")  # plots: a category, not a rate
    assert build_model(readable).count_params() == build_model(config).count_params()
    per_layer = cfg.effective(config, collapse_layers=False)  # the same keys for every 2-layer trial
    assert per_layer["units_1"] == per_layer["units_2"] == 64 and "units" not in per_layer
    assert per_layer["activation_1"] == per_layer["activation_2"] == "relu" and "units_3" not in per_layer
    assert build_model(per_layer).count_params() == build_model(config).count_params()


def test_mlp_augments_images_and_refuses_to_augment_tables() -> None:
    model = build_model({"model": "mlp", "num_layers": 1, "units": 8, "augment_flip": True, "augment_translate": 0.1})
    names = [layer.name for layer in model.layers]
    assert names[1:3] == ["augment_flip", "augment_translate"] and names[3] == "flatten"
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x, training=False))  # identity at inference
    with pytest.raises(ModelConfigError, match=r"need image inputs .* shape \(8,\)\. Fix: leave both off"):
        build_model({"model": "mlp", "num_layers": 1, "augment_translate": 0.1}, input_shape=(8,), num_classes=2)


@pytest.mark.parametrize(
    ("config", "key", "other"),
    [({"model": "mlp", "num_layers": 2}, "units_3", 64), ({"model": "mlp", "num_layers": 3}, "units_3", 64),
     ({"model": "mlp", "num_layers": 0}, "units", 64), ({"model": "mlp", "optimizer": "adam"}, "lr_sgd", 0.5),
     ({"model": "mlp", "optimizer": "sgd"}, "lr_sgd", 0.5),
     ({"model": "mlp", "optimizer": "sgd", "learning_rate": 0.1}, "lr_sgd", 0.5),
     ({"model": "mlp", "optimizer": "adam"}, "momentum", 0.5),
     ({"model": "mlp", "optimizer": "sgd"}, "nesterov", True),
     ({"model": "cnn", "num_blocks": 2}, "filters_3", 8), ({"model": "cnn", "num_dense": 0}, "dense_units", 8),
     ({"model": "cnn", "num_dense": 0}, "activation", "tanh"),
     ({"model": "cnn", "num_dense": 2}, "dense_dropout_2", 0.5)],
)  # fmt: skip
def test_is_used_says_whether_a_key_changes_the_model_built(config: dict, key: str, other: object) -> None:
    """The conditions the searchers are given (spaces.conditions) come from cfg.is_used: a key it calls unused
    leaves the effective config (what the builders read) unchanged, a used one changes it."""
    def built(config: dict) -> dict:
        return cfg.effective(config, collapse_layers=False)

    changed = built({**config, key: other}) != built(config)
    assert cfg.is_used(key, config) == changed

from __future__ import annotations

import pytest
from ray import tune

from rtune_fashion.errors import SearchSpaceError
from rtune_fashion.models import build_model
from rtune_fashion.spaces import SPACES, Condition, SearchSpace, conditions, get_space, validate, validate_space


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_is_valid(name: str) -> None:
    validate(SPACES[name])


def test_points_to_evaluate_are_checked_against_the_space() -> None:
    params = {"model": "mlp", "units": tune.choice([8, 16]), "dropout": tune.uniform(0, 0.5)}
    validate(SearchSpace("ok", params, "test", points_to_evaluate=[{"units": 8, "dropout": 0.1}]))
    with pytest.raises(SearchSpaceError, match=r"point to evaluate 1 has units=32, outside the key's domain"):
        validate(SearchSpace("bad", params, "test", points_to_evaluate=[{"units": 32, "dropout": 0.1}]))
    with pytest.raises(SearchSpaceError, match=r"point to evaluate 1 must give the searched keys its config uses; "
                       r"extra: \[\], missing: \['dropout'\]"):
        validate(SearchSpace("bad", params, "test", points_to_evaluate=[{"units": 8}]))
    stepped = {"model": "mlp", "units": tune.qrandint(50, 350, 50)}
    validate(SearchSpace("ok", stepped, "test", points_to_evaluate=[{"units": 350}]))  # qrandint's upper end: in
    with pytest.raises(SearchSpaceError, match=r"point to evaluate 1 has units=173, outside the key's domain"):
        validate(SearchSpace("bad", stepped, "test", points_to_evaluate=[{"units": 173}]))  # off its steps


@pytest.mark.parametrize("name", sorted(n for n in SPACES if not SPACES[n].is_grid))
def test_sampled_configs_build(name: str) -> None:
    for _ in range(3):
        config = {k: v.sample() if hasattr(v, "sample") else v for k, v in SPACES[name].params.items()}
        assert build_model(config).count_params() > 0


def test_article_a_space_is_faithful() -> None:
    params = get_space("mlp_hyperas").params
    assert params["num_layers"].categories == [2, 3]
    assert params["units_3"].categories == [128, 256, 512, 1024]
    assert params["lr_sgd"].categories == [1e-3, 1e-2, 1e-1]
    assert (params["dropout_2"].lower, params["dropout_2"].upper) == (0.0, 1.0)
    assert params["batch_size"].categories == [128, 256, 512]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model": "mlp", "units": tune.randint(300, 100)}, r"'units': lower < upper must hold.*lower=300, upper=100"),
        ({"model": "mlp", "optimizer": tune.choice([])}, r"'optimizer': tune.choice\(\[\]\) has no categories"),
        ({"model": "mlp", "units": tune.grid_search([])}, r"grid_search needs a non-empty list"),
        ({"model": "mlp", "unitz": 3}, r"unknown key 'unitz' for a mlp model"),
        ({"units": 3}, r"key 'model' must be the constant 'mlp' or 'cnn'"),
        ({"model": tune.choice(["mlp", "cnn"])}, r"key 'model' must be the constant"),
        ({"model": "mlp", "dropout": tune.uniform(0, 1.5)}, r"'dropout': range \[0, 1.5\] goes beyond .* 1.0"),
        ({"model": "mlp", "optimizer": tune.choice(["adam", "lbfgs"])}, r"'optimizer' can take a value .* 'lbfgs'"),
        ({"model": "mlp", "units": tune.randint(0, 10)}, r"'units' can take a value the model refuses.*'units' is 0"),
    ],
)
def test_invalid_spaces_are_refused_with_the_key_named(params: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        validate_space(params)


def test_space_that_allows_an_impossible_cnn_is_refused() -> None:
    params = {"model": "cnn", "num_blocks": tune.randint(1, 5), "convs_per_block": 2,
              "padding": tune.choice(["same", "valid"])}  # fmt: skip
    with pytest.raises(SearchSpaceError, match=r"impossible CNN \(with num_blocks=4, padding='valid'\).*block3_conv2"):
        validate_space(params, name="my space")


def test_unknown_space_name_lists_the_spaces() -> None:
    with pytest.raises(SearchSpaceError, match=r"Unknown search space 'cnn'. Spaces: mlp_hyperas, cnn_hyperas"):
        get_space("cnn")


def test_a_grid_counts_its_points() -> None:
    assert get_space("mlp_grid").grid_points == 12  # 4 optimizers x 3 learning rates
    assert get_space("mlp_hyperas").grid_points == 1 and not get_space("mlp_hyperas").is_grid


def test_conditions_follow_what_the_builders_use() -> None:
    """Article A's nesting (a third layer's keys only at depth 3, each optimizer's learning rate only for it) and
    Keras Tuner's (units_2 at 2 or 3 layers); keys every config uses have none."""
    assert get_space("mlp_hyperas").conditions == {
        **{f"{key}_3": Condition("num_layers", (3,)) for key in ("units", "activation", "dropout")},
        **{f"lr_{name}": Condition("optimizer", (name,)) for name in ("adam", "sgd", "rmsprop")},
    }
    assert get_space("mlp_kerastuner").conditions == {"units_2": Condition("num_layers", (2, 3)),
                                                      "units_3": Condition("num_layers", (3,))}
    assert get_space("cnn_hyperas").conditions == {"dense_units_2": Condition("num_dense", (2,)),
                                                   "dense_dropout_2": Condition("num_dense", (2,))}
    momentum = {"model": "mlp", "optimizer": tune.choice(["adam", "sgd"]), "momentum": tune.uniform(0.0, 0.9),
                "units": tune.choice([8, 16]), "num_layers": tune.choice([0, 1])}
    assert conditions(momentum) == {"momentum": Condition("optimizer", ("sgd",)),
                                    "units": Condition("num_layers", (1,))}


@pytest.mark.parametrize(
    ("params", "message"),
    [({"model": "mlp", "num_layers": tune.choice([1, 2]), "units_3": tune.choice([8, 16])},
      r"key 'units_3' is searched but no config uses it \(num_layers is tune.Categorical\)"),
     ({"model": "mlp", "num_layers": 2, "units_3": tune.choice([8, 16])},
      r"key 'units_3' is searched but no config uses it \(num_layers is 2\)"),
     ({"model": "mlp", "optimizer": "adam", "momentum": tune.uniform(0.0, 0.9)},
      r"key 'momentum' is searched but no config uses it \(optimizer is 'adam'\). Fix: remove it, or let optimizer"),
     ({"model": "mlp", "lr_sgd": tune.choice([0.1, 0.01])},  # optimizer left at its default, adam
      r"key 'lr_sgd' is searched but no config uses it \(optimizer is 'adam'\)")],
)  # fmt: skip
def test_a_searched_key_no_config_uses_is_refused(params: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        validate_space(params)


def test_a_point_may_leave_out_the_keys_its_own_values_make_unused() -> None:
    params = {"model": "mlp", "num_layers": tune.choice([1, 2]), "units_1": tune.choice([8, 16]),
              "units_2": tune.choice([8, 16])}
    validate(SearchSpace("ok", params, "test", points_to_evaluate=[{"num_layers": 1, "units_1": 8}]))
    with pytest.raises(SearchSpaceError, match=r"point to evaluate 1 .* missing: \['units_2'\]"):
        validate(SearchSpace("bad", params, "test", points_to_evaluate=[{"num_layers": 2, "units_1": 8}]))


def test_a_restricted_space_drops_the_keys_no_config_then_uses() -> None:
    """A budget's plan or the smoke test may keep one depth or one optimizer: units_3 and lr_sgd go with them."""
    two_layers_adam = get_space("mlp_hyperas").restricted({"num_layers": [2], "optimizer": ["adam"]})
    validate(two_layers_adam)
    assert not {"units_3", "activation_3", "dropout_3", "lr_sgd", "lr_rmsprop"} & set(two_layers_adam.params)
    assert {"units_2", "lr_adam"} <= set(two_layers_adam.params) and two_layers_adam.conditions == {}

"""Hyperparameters, epoch cap and argument checks of the core."""

import numpy as np
import pytest

from d2l_shim._common import (
    MAX_EPOCHS_ENV,
    HyperParameters,
    add_to_class,
    capped_epochs,
    check_len,
    check_positive,
    check_positive_int,
    check_shape,
    seed_python_and_numpy,
)


class _Model(HyperParameters):
    def __init__(self, num_hiddens, lr=0.1, sigma=0.01, _private=1, **kwargs):
        self.save_hyperparameters(ignore=["sigma"])


def test_save_hyperparameters_sets_attributes_and_ignores_names():
    model = _Model(32, lr=0.5, extra=3)
    assert model.num_hiddens == 32 and model.lr == 0.5
    assert model.kwargs == {"extra": 3}
    assert not hasattr(model, "sigma")
    assert not hasattr(model, "_private")
    assert model.hparams == {"num_hiddens": 32, "lr": 0.5, "kwargs": {"extra": 3}}


def test_save_hyperparameters_with_super_skips_class_cell():
    class Child(_Model):
        def __init__(self, num_layers):
            super().__init__(8)
            self.save_hyperparameters()

    child = Child(2)
    assert child.num_layers == 2 and child.num_hiddens == 8
    assert "__class__" not in child.hparams and "self" not in child.hparams


def test_add_to_class():
    class A:
        pass

    @add_to_class(A)
    def double(self, x):
        return 2 * x

    assert A().double(3) == 6


def test_check_shape_and_len():
    check_shape(np.zeros((2, 3)), (2, 3))
    with pytest.raises(AssertionError):
        check_shape(np.zeros((2, 3)), (3, 2))
    check_len([1, 2], 2)
    with pytest.raises(AssertionError):
        check_len([1, 2], 3)


# ---- epoch cap -------------------------------------------------------------------------------
def test_capped_epochs_without_cap(monkeypatch):
    monkeypatch.delenv(MAX_EPOCHS_ENV, raising=False)
    assert capped_epochs(100) == 100
    monkeypatch.setenv(MAX_EPOCHS_ENV, "")
    assert capped_epochs(100) == 100


@pytest.mark.parametrize(("cap", "max_epochs", "expected"), [("2", 100, 2), (" 5 ", 3, 3)])
def test_capped_epochs_with_cap(monkeypatch, cap, max_epochs, expected):
    monkeypatch.setenv(MAX_EPOCHS_ENV, cap)
    assert capped_epochs(max_epochs) == expected


@pytest.mark.parametrize("cap", ["0", "-1", "two", "1.5"])
def test_capped_epochs_invalid_variable(monkeypatch, cap):
    monkeypatch.setenv(MAX_EPOCHS_ENV, cap)
    with pytest.raises(ValueError, match=MAX_EPOCHS_ENV):
        capped_epochs(10)


@pytest.mark.parametrize("max_epochs", [0, -3, 2.5, "10"])
def test_capped_epochs_invalid_max_epochs(monkeypatch, max_epochs):
    monkeypatch.delenv(MAX_EPOCHS_ENV, raising=False)
    with pytest.raises(ValueError, match="max_epochs"):
        capped_epochs(max_epochs)


# ---- checks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_check_positive_int_accepts(value):
    assert check_positive_int("n", value) == value
    assert type(check_positive_int("n", value)) is int


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "2", None, np.float32(2)])
def test_check_positive_int_rejects_naming_the_parameter(value):
    with pytest.raises(ValueError, match="num_layers"):
        check_positive_int("num_layers", value)


@pytest.mark.parametrize("value", [1e-9, 2, 0.5, np.float32(0.1)])
def test_check_positive_accepts(value):
    assert check_positive("lr", value) == value


@pytest.mark.parametrize("value", [0, -0.1, float("nan"), float("inf"), True, "0.1", None])
def test_check_positive_rejects_naming_the_parameter(value):
    with pytest.raises(ValueError, match="lr"):
        check_positive("lr", value)


def test_check_positive_allow_zero():
    assert check_positive("gradient_clip_val", 0, allow_zero=True) == 0
    with pytest.raises(ValueError, match="gradient_clip_val"):
        check_positive("gradient_clip_val", -1, allow_zero=True)


def test_seed_python_and_numpy():
    seed_python_and_numpy(0)
    a = np.random.rand(3)
    seed_python_and_numpy(0)
    np.testing.assert_array_equal(np.random.rand(3), a)

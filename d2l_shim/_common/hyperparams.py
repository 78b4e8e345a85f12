"""Hyperparameter saving and small helpers shared by every framework (no framework import)."""

from __future__ import annotations

import inspect
import math
import os
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

MAX_EPOCHS_ENV = "D2L_MAX_EPOCHS"


class HyperParameters:
    """Base class that turns the arguments of ``__init__`` into attributes."""

    def save_hyperparameters(self, ignore: Iterable[str] = ()) -> None:
        """Store the caller's arguments as ``self.hparams`` and as attributes."""
        frame = inspect.currentframe().f_back
        _, _, _, local_vars = inspect.getargvalues(frame)
        skip = set(ignore) | {"self"}
        self.hparams = {
            k: v
            for k, v in local_vars.items()
            if k not in skip and not k.startswith("_") and k != "__class__"
        }
        for k, v in self.hparams.items():
            setattr(self, k, v)
        self.check_hyperparameters()

    def check_hyperparameters(self) -> None:
        """Hook called by ``save_hyperparameters``: raise a ValueError naming a bad value."""


def add_to_class(Class: type) -> Callable:
    """Decorator that registers the function as a method of ``Class`` (for the chapters)."""

    def wrapper(obj: Callable) -> Callable:
        setattr(Class, obj.__name__, obj)
        return obj

    return wrapper


def check_shape(a: Any, shape: tuple) -> None:
    """Check the shape of a tensor of any framework."""
    assert tuple(a.shape) == tuple(shape), f"tensor's shape {tuple(a.shape)} != expected {shape}"


def check_len(a: Any, n: int) -> None:
    """Check the length of a list."""
    assert len(a) == n, f"list's length {len(a)} != expected length {n}"


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer >= 1, else raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} doit être un entier >= 1 (reçu : {value!r})")
    return int(value)


def check_positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a finite number > 0 (>= 0 if allowed), else a ValueError."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} doit être un nombre fini {bound} (reçu : {value!r})")
    return value


def capped_epochs(max_epochs: int) -> int:
    """Apply the cap from the environment variable ``D2L_MAX_EPOCHS`` (used by smoke runs)."""
    max_epochs = check_positive_int("max_epochs", max_epochs)
    cap = os.environ.get(MAX_EPOCHS_ENV, "").strip()
    if not cap:
        return max_epochs
    try:
        return min(max_epochs, check_positive_int(MAX_EPOCHS_ENV, int(cap)))
    except ValueError:
        raise ValueError(
            f"la variable d'environnement {MAX_EPOCHS_ENV} doit être un entier >= 1 "
            f"(reçu : {cap!r})"
        ) from None


def seed_python_and_numpy(seed: int) -> None:
    """Seed Python's and NumPy's generators (the framework modules seed their own too)."""
    random.seed(seed)
    np.random.seed(seed)

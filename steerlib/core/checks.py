"""Checks of parameters: each returns the value, or raises a ValueError naming the parameter, the value and what is
allowed, before any work starts."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; else raise a ValueError naming the parameter and the choices."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
    return value


def check_choices(name: str, values: Iterable[Any], allowed: Iterable[Any]) -> tuple:
    """Validate every element of ``values`` with :func:`check_choice`; return them as a tuple."""
    allowed = tuple(allowed)
    return tuple(check_choice(name, v, allowed) for v in values)


def check_range(name: str, value: float, low: float | None = None, high: float | None = None) -> float:
    """Return ``value`` if ``low <= value <= high`` (either bound may be None); else raise a ValueError."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}={value!r} is out of range; allowed values lie in [{lo}, {hi}]")
    return value

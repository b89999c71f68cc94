"""Profiles and parameter validation shared by every chapter.

A *profile* names a scale for a chapter: ``smoke`` (seconds, for tests), ``cpu`` (the default: minutes on a
2-core laptop, where the chapter's claims must hold) and ``paper`` (the dissertation's scale, meant for a GPU;
``gpu`` is an alias). Each chapter module keeps its own ``PROFILES`` dict mapping these names to a frozen
dataclass of settings, so the settings live in the library rather than in notebooks.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

PROFILE_NAMES = ("smoke", "cpu", "paper")
PROFILE_ALIASES = {"gpu": "paper"}
PROFILE_ENV = "STEERLIB_PROFILE"  # lets nbval (which cannot inject parameters) pick a profile

T = TypeVar("T")


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


def resolve_profile(profile: str | None = None) -> str:
    """The profile to use: the argument, else ``$STEERLIB_PROFILE``, else ``cpu``; aliases resolved, name checked."""
    name = profile or os.environ.get(PROFILE_ENV) or "cpu"
    name = PROFILE_ALIASES.get(name, name)
    return check_choice("profile", name, PROFILE_NAMES)


def get_profile(profiles: Mapping[str, T], profile: str | None = None, **overrides: Any) -> T:
    """Look up a chapter's settings for ``profile`` and apply keyword ``overrides`` (None values are ignored).

    Unknown override names raise a ValueError listing the fields the settings have.
    """
    settings = profiles[resolve_profile(profile)]
    fields = {f.name for f in dataclasses.fields(settings)}  # type: ignore[arg-type]
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in given:
        check_choice("setting", key, sorted(fields))
    return dataclasses.replace(settings, **given)  # type: ignore[type-var]

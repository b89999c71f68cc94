"""Profiles: the named scales every chapter runs at.

A *profile* names a scale for a chapter: ``smoke`` (seconds, for tests), ``cpu`` (the default: minutes on a
2-core laptop, where the chapter's claims must hold) and ``paper`` (the dissertation's scale, meant for a GPU;
``gpu`` is an alias). Each chapter module keeps its own ``PROFILES`` dict mapping these names to a frozen
dataclass of settings, so the settings live in the library rather than in notebooks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from steerlib.core.checks import check_choice

PROFILE_NAMES = ("smoke", "cpu", "paper")
PROFILE_ALIASES = {"gpu": "paper"}
PROFILE_ENV = "STEERLIB_PROFILE"  # lets nbval (which cannot inject parameters) pick a profile

T = TypeVar("T")


def resolve_profile(profile: str | None = None) -> str:
    """The profile to use: the argument unless it is None, else ``$STEERLIB_PROFILE`` unless unset or empty, else
    ``cpu``; the name checked (an empty string is an error, not "not given"), aliases resolved."""
    name = profile if profile is not None else os.environ.get(PROFILE_ENV) or "cpu"
    check_choice("profile" if profile is not None else f"${PROFILE_ENV}", name, (*PROFILE_NAMES, *PROFILE_ALIASES))
    return PROFILE_ALIASES.get(name, name)


def get_profile(profiles: Mapping[str, T], profile: str | None = None, **overrides: Any) -> T:
    """Look up a chapter's settings for ``profile`` and apply keyword ``overrides`` (None values are ignored).

    Unknown override names raise a ValueError listing the fields the settings have; the settings' own
    ``__post_init__`` checks the values.
    """
    settings = profiles[resolve_profile(profile)]
    fields = {f.name for f in dataclasses.fields(settings)}  # type: ignore[arg-type]
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in given:
        check_choice("setting", key, sorted(fields))
    return dataclasses.replace(settings, **given)  # type: ignore[type-var]

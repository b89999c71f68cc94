"""Checks of parameters, the one set the whole library validates its inputs with.

Each check returns the value (as a NumPy array for :func:`check_array`) or raises before any work starts, naming the
parameter, the value and what is allowed: a TypeError when the value is of the wrong kind (a string where a number
is asked, a float or a bool where an integer is), a ValueError when it is of the right kind but not allowed (out of
range, NaN or infinite, empty, an unknown name, a shape that does not match).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence, Sized
from typing import Any

import numpy as np
import torch

SEED_MAX = 2**63 - 1  # seeds are integers in [0, SEED_MAX]: every torch and NumPy generator takes them
RUN_SEED_MAX = 2**32 - 1  # a run's seed (chapters, training configs), from which seeds like seed·1,000,003 + step
# are derived: kept small enough that those stay below SEED_MAX


def _show(value: Any) -> str:
    """A short repr of ``value`` for an error message (NumPy scalars as Python numbers)."""
    text = " ".join(repr(value.item() if isinstance(value, np.generic) else value).split())
    return text if len(text) <= 60 else f"{text[:57]}..."


def _interval(low: float | None, high: float | None, open_low: bool = False, open_high: bool = False) -> str:
    return (
        f"{'(' if open_low or low is None else '['}{'-inf' if low is None else low}, "
        f"{'inf' if high is None else high}{')' if open_high or high is None else ']'}"
    )


def check_type(name: str, value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """Return ``value`` if it is an instance of ``types``; else raise a TypeError saying it must be ``what``."""
    if not isinstance(value, types):
        raise TypeError(f"{name}={_show(value)} is a {type(value).__name__}; {name} must be {what}")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; else raise a ValueError naming the parameter and the choices."""
    allowed = tuple(allowed)
    if isinstance(value, (np.ndarray, torch.Tensor)) or value not in allowed:  # arrays compare elementwise
        raise ValueError(f"{name}={_show(value)} is not allowed; choose one of {', '.join(map(repr, allowed))}")
    return value


def check_nonempty(name: str, values: Any) -> Any:
    """Return ``values`` if it holds at least one element; else raise a ValueError (a TypeError if it has no
    length)."""
    if not hasattr(values, "__len__"):
        raise TypeError(f"{name}={_show(values)} is a {type(values).__name__}; {name} must be a sequence")
    if len(values) == 0:
        raise ValueError(f"{name}={_show(values)} is empty; give at least one element")
    return values


def check_choices(name: str, values: Sequence[Any], allowed: Iterable[Any]) -> tuple:
    """A non-empty list or tuple whose every element passes :func:`check_choice`; returned as a tuple."""
    check_type(name, values, (list, tuple), "a list or tuple of names")
    allowed = tuple(allowed)
    return tuple(check_choice(f"{name}[{i}]", v, allowed) for i, v in enumerate(check_nonempty(name, values)))


def check_sequence(name: str, values: Any, what: str) -> Any:
    """``values`` if it is a non-empty sequence (a list, a tuple, a dataset's column; not a string, whose characters
    would pass for one); else raise saying it must be ``what``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) or not hasattr(values, "__len__"):
        raise TypeError(f"{name}={_show(values)} is a {type(values).__name__}; {name} must be {what}")
    return check_nonempty(name, values)


def check_strings(name: str, values: Iterable[str]) -> list[str]:
    """A non-empty sequence of strings (see :func:`check_sequence`), as a list."""
    what = "a list of strings"
    return [check_type(name, v, str, what) for v in check_sequence(name, values, what)]


def check_same_length(names: str, *values: Sized) -> int:
    """The common length of ``values`` (e.g. ``names="prompts, responses"``); a ValueError if they differ."""
    lengths = [len(v) for v in values]
    if len(set(lengths)) > 1:
        raise ValueError(f"{names} must have the same length; got lengths {lengths}")
    return lengths[0]


def check_columns(name: str, columns: Iterable[str], required: Iterable[str], hint: str = "") -> None:
    """Raise a ValueError if a table ``name`` whose columns are ``columns`` lacks one of ``required``."""
    columns = list(columns)
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(
            f"{name} lacks the column{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(repr, columns)) or 'none'}){f'; {hint}' if hint else ''}"
        )


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    open_low: bool = False,
    open_high: bool = False,
) -> Any:
    """Return ``value`` if it is a finite real number (an integer if ``integer``; never a bool) with
    ``low <= value <= high`` (``<`` at a bound marked open; either bound may be None); else raise."""
    kind = "an integer" if integer else "a finite number"
    wanted = numbers.Integral if integer else numbers.Real
    allowed = _interval(low, high, open_low, open_high)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, wanted):
        raise TypeError(f"{name}={_show(value)} is a {type(value).__name__}; {name} must be {kind} in {allowed}")
    if not math.isfinite(value):
        raise ValueError(f"{name}={_show(value)} is not a finite number; allowed values lie in {allowed}")
    below = low is not None and (value <= low if open_low else value < low)
    above = high is not None and (value >= high if open_high else value > high)
    if below or above:
        raise ValueError(f"{name}={_show(value)} is out of range; allowed values lie in {allowed}")
    return value


def check_seed(name: str, value: Any, high: int = SEED_MAX) -> int:
    """A seed: an integer in [0, ``high``] (:data:`RUN_SEED_MAX` for a run's seed)."""
    return check_range(name, value, 0, high, integer=True)


def check_ranges(
    name: str,
    values: Sequence[Any],
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    open_low: bool = False,
    open_high: bool = False,
) -> tuple:
    """A non-empty list or tuple whose every element passes :func:`check_range`; returned as a tuple."""
    check_type(name, values, (list, tuple), "a list or tuple of numbers")
    return tuple(
        check_range(f"{name}[{i}]", v, low, high, integer=integer, open_low=open_low, open_high=open_high)
        for i, v in enumerate(check_nonempty(name, values))
    )


def check_value_range(value_range: Sequence[float], name: str = "value_range") -> tuple[float, float]:
    """A (low, high) pair of finite numbers with low < high, as a tuple."""
    check_type(name, value_range, (tuple, list), "a (low, high) pair")
    values = check_ranges(name, value_range)
    if len(values) != 2 or not values[0] < values[1]:
        raise ValueError(f"{name}={values} must be (low, high) with low < high")
    return values


def check_array(
    name: str,
    values: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    open_low: bool = False,
    allow_inf: bool = False,
    allow_nan: bool = False,
    ndim: int | None = None,
) -> np.ndarray:
    """``values`` (array, tensor or nested sequence of numbers) as a NumPy array, checked: non-empty, numeric
    (integers if ``integer``), ``ndim`` dimensions if given, no infinity unless ``allow_inf``, no NaN unless
    ``allow_nan``, and every other element within the bounds of :func:`check_range`."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        values = (values.float() if values.dtype == torch.bfloat16 else values).numpy()  # NumPy has no bfloat16
    try:
        arr = np.asarray(values)
    except ValueError as err:  # ragged nesting
        raise ValueError(f"{name} is not a rectangular array of numbers ({err})") from None
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); give at least one value")
    if arr.dtype.kind not in ("iu" if integer else "biuf") or (integer and arr.dtype.kind == "b"):
        raise TypeError(
            f"{name} holds {arr.dtype} values ({_show(values)}); {name} must hold "
            f"{'integers' if integer else 'numbers'}"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} has shape {arr.shape}; it must have {ndim} dimension{'s' * (ndim != 1)}")
    nan = np.isnan(arr)
    bad = (np.zeros_like(nan) if allow_nan else nan) | (np.isinf(arr) & (not allow_inf))
    if low is not None:
        bad |= arr <= low if open_low else arr < low
    if high is not None:
        bad |= arr > high
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} holds {_show(arr[where])} at index {where}; allowed values lie in "
            f"{_interval(low, high, open_low)}{'' if allow_inf else ', finite'}"
            f"{' (NaN allowed)' if allow_nan else ''}"
        )
    return arr


def check_tensor(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    open_low: bool = False,
    allow_inf: bool = False,
    allow_nan: bool = False,
    ndim: int | None = None,
) -> torch.Tensor:
    """``value`` if it is a torch tensor that passes :func:`check_array` with the same arguments; else raise."""
    check_type(name, value, torch.Tensor, "a torch tensor")
    check_array(
        name, value, low, high, integer=integer, open_low=open_low, allow_inf=allow_inf, allow_nan=allow_nan, ndim=ndim
    )
    return value


def check_shape(name: str, value: Any, shape: Sequence[int | None], why: str = "") -> Any:
    """Return ``value`` if its shape is ``shape`` (None matches any size); else raise a ValueError."""
    actual = tuple(np.shape(value)) if not isinstance(value, torch.Tensor) else tuple(value.shape)
    if len(actual) != len(shape) or any(s is not None and s != a for s, a in zip(shape, actual)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} has shape {actual}; it must have shape {want}{f' ({why})' if why else ''}")
    return value

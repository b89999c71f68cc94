"""Covariate shifts as parameterised transforms of a batch of inputs.

Every transform works on (N, C, H, W) images and has a 1-D analogue for (N, C, L) signals:

- ``rotate``: rotate by ``severity`` degrees (1-D: rotate the curve (t, x(t)) in the plane, with t spanning the
  value range so both axes share units, and resample it on the original grid);
- ``noise``: add Gaussian noise with standard deviation ``severity`` (in units of the value range), then clip to
  the value range, as image corruption benchmarks (CIFAR-10-C) do;
- ``blur``: Gaussian blur with standard deviation ``severity`` pixels (samples);
- ``saltpepper``: set a fraction ``severity`` of entries to the low or high end of the value range.

Allowed severities (:data:`SEVERITY_RANGES`): rotation 0-360 degrees, noise 0-1 (a standard deviation of the whole
value range already drowns any image), blur 0-64 pixels (beyond the size of any image here; the filter's cost grows
with it), salt-and-pepper 0-1 (a fraction).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from steerlib.core.checks import (
    check_choice,
    check_choices,
    check_columns,
    check_range,
    check_ranges,
    check_seed,
    check_shape,
    check_tensor,
    check_type,
    check_value_range,
)
from steerlib.core.seeds import substream

SHIFTS = ("rotate", "noise", "blur", "saltpepper")
SEVERITY_RANGES = {"rotate": (0, 360), "noise": (0, 1), "blur": (0, 64), "saltpepper": (0, 1)}

# Default severities (level 1..5) for each shift; level 0 is the clean test set. "2d" is for 8x8 digits,
# "2d-large" for 28x28 and larger images (MNIST, CIFAR-10), "1d" for mnist1d signals. Noise follows CIFAR-10-C's
# Gaussian-noise severities and salt-and-pepper the dissertation's UTKFace levels; blur is scaled to the input size.
_COMMON = {
    "rotate": (15, 30, 45, 60, 90),
    "noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "saltpepper": (0.03, 0.06, 0.09, 0.17, 0.27),
}
SEVERITIES = {
    "2d-large": {**_COMMON, "blur": (1, 2, 3, 4, 6)},
    "2d": {**_COMMON, "blur": (0.4, 0.6, 0.8, 1.1, 1.5)},
    "1d": {**_COMMON, "blur": (1, 2, 3, 4, 6)},
}


def _check_input_shape(input_shape: tuple[int, ...]) -> None:
    check_type("input_shape", input_shape, (tuple, list, torch.Size), "(C, H, W) or (C, L)")
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape={tuple(input_shape)} is neither (C, H, W) nor (C, L)")
    check_ranges("input_shape", tuple(input_shape), 1, integer=True)


def _check_batch(name: str, x: torch.Tensor) -> None:
    """A non-empty batch (N, C, H, W) or (N, C, L) of finite inputs."""
    check_tensor(name, x)
    if x.dim() not in (3, 4):
        raise ValueError(f"{name} has shape {tuple(x.shape)}; it must be a batch (N, C, H, W) or (N, C, L)")


def severities(shift: str, input_shape: tuple[int, ...]) -> tuple[float, ...]:
    """The five default severities of ``shift`` for inputs of shape (C, H, W) or (C, L)."""
    check_choice("shift", shift, SHIFTS)
    _check_input_shape(input_shape)
    kind = "1d" if len(input_shape) == 2 else ("2d" if input_shape[-1] < 28 else "2d-large")
    return SEVERITIES[kind][shift]


def _rotate_1d(x: np.ndarray, degrees: float, half_width: float) -> np.ndarray:
    """Rotate each curve (t_j, x_j), t in [-half_width, half_width], about the origin; resample on the grid t."""
    n, c, length = x.shape
    t = np.linspace(-half_width, half_width, length)
    a = np.deg2rad(degrees)
    flat = x.reshape(-1, length)
    out = np.empty_like(flat)
    for i, row in enumerate(flat):
        tr, xr = t * np.cos(a) - row * np.sin(a), t * np.sin(a) + row * np.cos(a)
        order = np.argsort(tr, kind="stable")
        out[i] = np.interp(t, tr[order], xr[order])  # constant extension outside the rotated curve's span
    return out.reshape(n, c, length)


def apply_shift(
    x: torch.Tensor, shift: str, severity: float, value_range: tuple[float, float] = (0.0, 1.0), seed: int = 0
) -> torch.Tensor:
    """Return a shifted copy of ``x``, a batch (N, C, H, W) or (N, C, L); severity 0 returns ``x`` unchanged. Random
    shifts use ``seed``. Severities lie in :data:`SEVERITY_RANGES`."""
    check_choice("shift", shift, SHIFTS)
    check_range("severity", severity, *SEVERITY_RANGES[shift])
    _check_batch("x", x)
    check_value_range(value_range)
    check_seed("seed", seed)
    if severity == 0:
        return x.clone()
    lo, hi = value_range
    arr = x.detach().cpu().numpy().astype(np.float32)
    spatial = tuple(range(2, arr.ndim))
    rng = np.random.default_rng(seed)
    if shift == "rotate":
        if arr.ndim == 3:
            out = _rotate_1d(arr, severity, (hi - lo) / 2)
        else:
            out = ndimage.rotate(arr, severity, axes=spatial, reshape=False, order=1, mode="constant", cval=lo)
    elif shift == "noise":
        out = np.clip(arr + rng.normal(0.0, severity * (hi - lo), arr.shape).astype(np.float32), lo, hi)
    elif shift == "blur":
        sigma = [0.0, 0.0] + [float(severity)] * len(spatial)
        out = ndimage.gaussian_filter(arr, sigma=sigma, mode="nearest")
    else:  # saltpepper
        u = rng.random(arr.shape)
        out = arr.copy()
        out[u < severity / 2] = lo
        out[(u >= severity / 2) & (u < severity)] = hi
    return torch.as_tensor(out, dtype=x.dtype)


@dataclasses.dataclass
class EvalSet:
    """One evaluation set: the test split under ``shift`` at ``level`` (0 = clean) of severity ``severity``."""

    shift: str
    level: int
    severity: float
    x: torch.Tensor
    y: torch.Tensor


def _ladder(
    shift: str, input_shape: tuple[int, ...], ladders: dict[str, tuple[float, ...]] | None
) -> tuple[float, ...]:
    """``ladders[shift]`` (checked), else the default :func:`severities`."""
    if ladders is None:
        return severities(shift, input_shape)
    check_type("ladders", ladders, dict, "a dict shift -> severities, or None")
    if shift not in ladders:
        raise ValueError(f"ladders has no severities for shift={shift!r}; it holds {sorted(ladders)}")
    return tuple(check_ranges(f"ladders[{shift!r}]", ladders[shift], *SEVERITY_RANGES[shift]))


def evaluation_sets(
    x: torch.Tensor,
    y: torch.Tensor,
    shifts: tuple[str, ...],
    value_range: tuple[float, float],
    seed: int = 0,
    ladders: dict[str, tuple[float, ...]] | None = None,
) -> list[EvalSet]:
    """The clean set (shift "none", level 0) followed by every shift at the severities of ``ladders[shift]`` (e.g.
    from :mod:`steerlib.vision.ladders`), or by default its five default :func:`severities`; level ``l``'s noise
    is drawn from ``substream(seed, l)``."""
    _check_batch("x", x)
    check_tensor("y", y, 0, integer=True, ndim=1)
    check_shape("y", y, (len(x),), "one label per input of x")
    check_choices("shifts", shifts, SHIFTS)
    check_value_range(value_range)
    check_seed("seed", seed)
    sets = [EvalSet("none", 0, 0.0, x, y)]
    for shift in shifts:
        for level, sev in enumerate(_ladder(shift, tuple(x.shape[1:]), ladders), start=1):
            sets.append(EvalSet(shift, level, sev, apply_shift(x, shift, sev, value_range, substream(seed, level)), y))
    return sets


def focus_sets(
    x: torch.Tensor,
    shift: str,
    value_range: tuple[float, float],
    seed: int = 0,
    ladders: dict[str, tuple[float, ...]] | None = None,
) -> tuple[list[float], list[torch.Tensor]]:
    """Fig 2.2's sets: ``x`` (one class's test inputs) clean and at the severities of ``shift`` (as in
    :func:`evaluation_sets`), level ``l`` drawn from ``substream(seed, l)``; returns (severities, inputs)."""
    _check_batch("x", x)
    check_seed("seed", seed)
    check_choice("shift", shift, SHIFTS)
    sevs = [0.0, *_ladder(shift, tuple(x.shape[1:]), ladders)]
    return sevs, [apply_shift(x, shift, s, value_range, substream(seed, level)) for level, s in enumerate(sevs)]


def with_clean(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of every shift, with the clean set's rows (shift "none", level 0) copied into each shift's curve."""
    check_type("table", table, pd.DataFrame, "a DataFrame with a shift column")
    check_columns("table", table.columns, ("shift",))
    if not (table["shift"] == "none").any():
        raise ValueError("table has no clean rows (shift 'none') to copy into each shift's curve")
    clean = table[table["shift"] == "none"]
    shifted = table[table["shift"] != "none"]
    return pd.concat([shifted] + [clean.assign(shift=s) for s in shifted["shift"].unique()], ignore_index=True)

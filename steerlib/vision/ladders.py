"""Severity ladders fixed by one rule, the same for every shift, dataset and loss of Part I.

Rule: level i of a shift is the severity at which the cross-entropy ensemble loses a fraction ``LOSS_FRACTIONS[i]``
of its clean accuracy on a split held out of the training data (never the test split the claims read). The loss
curve 1 - acc(s) / acc(0) is measured on a grid of severities (:func:`grid`), made non-decreasing by a running
maximum, and read off by linear interpolation; where it never reaches a fraction the ladder stops at the grid's end
(and Part I's prerequisite that the strongest level costs a third of the clean accuracy says so).

The grids end where a shift stops being a shift of the same task: rotation at 90 degrees (beyond it a 6 reads as a
9), noise at a standard deviation of the whole value range, salt-and-pepper at 60% of the entries, blur at a seventh
of the input's side (4 pixels on 28x28 MNIST, where a digit is a blob).
"""

from __future__ import annotations

import numpy as np
import torch

from steerlib.core.checks import (
    check_array,
    check_choice,
    check_choices,
    check_ranges,
    check_seed,
    check_shape,
    check_tensor,
    check_type,
    check_value_range,
)
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.shifts import SHIFTS, apply_shift

LOSS_FRACTIONS = (0.1, 0.2, 0.3, 0.45, 0.6)  # level i costs this fraction of the clean accuracy
GRID_POINTS = 13


def grid(shift: str, input_shape: tuple[int, ...]) -> np.ndarray:
    """The severities searched for ``shift`` on inputs of shape (C, H, W) or (C, L), from 0 (see the module
    docstring for where each ends)."""
    check_choice("shift", shift, SHIFTS)
    check_type("input_shape", input_shape, (tuple, list, torch.Size), "(C, H, W) or (C, L)")
    check_ranges("input_shape", tuple(input_shape), 1, integer=True)
    end = {"rotate": 90.0, "noise": 1.0, "saltpepper": 0.6, "blur": input_shape[-1] / 7}[shift]
    return np.linspace(0.0, end, GRID_POINTS)


def read_ladder(
    severities: np.ndarray, accuracy: np.ndarray, fractions: tuple[float, ...] = LOSS_FRACTIONS
) -> tuple[float, ...]:
    """The severity at which the relative accuracy loss 1 - accuracy / accuracy[0] (running maximum over the
    increasing ``severities``, linearly interpolated) first reaches each of ``fractions``; the last severity where it
    never does. Rounded to three significant digits."""
    s = check_array("severities", severities, 0, ndim=1)
    a = check_array("accuracy", accuracy, 0, 1, ndim=1)
    check_shape("accuracy", a, (len(s),), "one accuracy per severity")
    if len(s) < 2 or np.any(np.diff(s) <= 0) or s[0] != 0:
        raise ValueError("severities must increase from 0 and hold at least two values")
    if a[0] <= 0:
        raise ValueError("accuracy[0] (clean) is 0; the loss relative to it is undefined")
    check_ranges("fractions", fractions, 0, 1, open_low=True)
    loss = np.maximum.accumulate(1 - a / a[0])
    out = []
    for f in fractions:
        above = np.flatnonzero(loss >= f)
        if not len(above):
            out.append(float(s[-1]))
            continue
        j = int(above[0])
        lo, hi = loss[j - 1], loss[j]  # j >= 1 since loss[0] = 0 < f
        out.append(float(s[j - 1] + (s[j] - s[j - 1]) * (f - lo) / (hi - lo)))
    return tuple(float(f"{v:.3g}") for v in out)


@torch.no_grad()
def severity_ladders(
    model: Ensemble,
    x: torch.Tensor,
    y: torch.Tensor,
    shifts: tuple[str, ...],
    value_range: tuple[float, float],
    seed: int = 0,
    fractions: tuple[float, ...] = LOSS_FRACTIONS,
) -> dict[str, tuple[float, ...]]:
    """Each shift's ladder (:func:`read_ladder`) from the accuracy of ``model`` (a classifier ensemble, its members'
    accuracies averaged) on the held-out inputs ``x`` with labels ``y`` over :func:`grid`."""
    check_type("model", model, Ensemble, "the cross-entropy Ensemble")
    check_tensor("x", x)
    check_tensor("y", y, 0, integer=True, ndim=1)
    check_shape("y", y, (len(x),), "one label per input of x")
    check_choices("shifts", shifts, SHIFTS)
    check_value_range(value_range)
    check_seed("seed", seed)
    ladders = {}
    for shift in shifts:
        sevs = grid(shift, tuple(x.shape[1:]))
        acc = [
            float((model.predict(apply_shift(x, shift, s, value_range, seed)).argmax(-1) == y).float().mean())
            for s in sevs
        ]
        ladders[shift] = read_ladder(sevs, np.asarray(acc), fractions)
    return ladders

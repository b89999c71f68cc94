"""Linear + multi-slab (LMS) data of Shah et al. (2020), "The Pitfalls of Simplicity Bias in Neural Networks".

Two classes y in {0, 1} and ``dim`` coordinates, each of which alone predicts y perfectly, in the unrotated basis:

- the first ``linear`` coordinates (the simple feature S): ``(2y - 1)(m + (w - m) u)`` with u ~ U(0, 1), so class 1
  lies in [m, w], class 0 in [-w, -m], and the gap -m < z < m is never seen (m = ``margin`` x ``width``);
- the next ``slabs`` coordinates (the complex features S^c), five slabs each, alternating classes across [-w, w]
  (side, inner, centre, inner, side) with margins 2m between them: class 1 falls in an inner slab (each with
  probability 1/2), class 0 in the centre slab with probability ``centre_p`` and in a side slab otherwise (each
  with probability (1 - centre_p)/2). With the authors' 3/4 that is 1/8, 1/2, 3/4, 1/2, 1/8 from left to right;
- any further coordinates: noise, U(0, w), independent of y.

The inputs a model sees are ``z @ rotation`` for a random orthonormal matrix, so no input coordinate is S alone.
Shifts are made in the unrotated basis and rotated back: :func:`permute_coordinates` randomises S (or S^c) across
points and keeps every coordinate's marginal, :func:`margin_band` redraws S in the unseen gap.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import ortho_group

from steerlib.core.checks import check_array, check_range, check_type


@dataclasses.dataclass(frozen=True)
class SlabData:
    """The generator's parameters, in the authors' parameterisation (LMS-5: one linear and 49 five-slab
    coordinates in 50 dimensions, margin 0.1 of a width of 1, the centre slab's probability 3/4)."""

    dim: int = 50
    linear: int = 1  # linear coordinates: the first ones
    slabs: int = 49  # five-slab coordinates: after the linear ones
    margin: float = 0.1  # half the gap around every class boundary, as a fraction of the width
    centre_p: float = 0.75  # probability that a class-0 point falls in a coordinate's centre slab
    width: float = 1.0  # the signal coordinates span [-width, width]

    def __post_init__(self):
        check_range("dim", self.dim, 1, integer=True)
        check_range("linear", self.linear, 0, integer=True)
        check_range("slabs", self.slabs, 0, integer=True)
        check_range("margin", self.margin, 0, 1, open_low=True, open_high=True)
        check_range("centre_p", self.centre_p, 0, 1, open_low=True, open_high=True)
        check_range("width", self.width, 0, open_low=True)
        if self.linear + self.slabs > self.dim:
            raise ValueError(
                f"dim={self.dim} is below linear + slabs = {self.linear + self.slabs}; "
                "give at least one dimension per linear and slab coordinate"
            )
        if self.margin > 0.25:
            raise ValueError(f"margin={self.margin} leaves no room for five slabs; choose margin in (0, 0.25)")

    @property
    def linear_coords(self) -> tuple[int, ...]:
        """Indices of S, the linear coordinates."""
        return tuple(range(self.linear))

    @property
    def slab_coords(self) -> tuple[int, ...]:
        """Indices of S^c, the slab coordinates."""
        return tuple(range(self.linear, self.linear + self.slabs))

    @property
    def slab_width(self) -> float:
        """Width of one slab: five slabs and four gaps of 2m fill [-w, w], so (2w - 8m)/5."""
        return (2 - 8 * self.margin) * self.width / 5


def _linear_values(y: np.ndarray, data: SlabData, rng: np.random.Generator) -> np.ndarray:
    """One linear coordinate for labels ``y``: (2y - 1)(m + (w - m) u), u ~ U(0, 1)."""
    m, w = data.margin * data.width, data.width
    return (2 * y - 1) * (m + (w - m) * rng.uniform(size=len(y)))


def _slab_values(y: np.ndarray, data: SlabData, rng: np.random.Generator) -> np.ndarray:
    """One five-slab coordinate for labels ``y`` (the module docstring's slabs)."""
    m, w, s = data.margin * data.width, data.width, data.slab_width
    sign = rng.choice([-1.0, 1.0], size=len(y))
    u = rng.uniform(size=len(y))
    centre = rng.uniform(size=len(y)) < data.centre_p
    inner = (w + 6 * m) / 5 + s * u  # class 1: [(w + 6m)/5, (w + 6m)/5 + s]
    side = (3 * w + 8 * m) / 5 + s * u  # class 0 off centre: [(3w + 8m)/5, w]
    middle = s * (u - 0.5)  # class 0 in the centre: [-s/2, s/2]
    return np.where(y == 1, sign * inner, np.where(centre, middle, sign * side))


def sample_slabs(data: SlabData, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in the unrotated basis, shape (n, dim), and their balanced-in-expectation labels (0 or 1)."""
    check_type("data", data, SlabData, "a SlabData")
    check_range("n", n, 1, integer=True)
    y = rng.integers(0, 2, n)
    z = rng.uniform(0, data.width, size=(n, data.dim))  # noise coordinates; the signal ones are overwritten
    for c in data.linear_coords:
        z[:, c] = _linear_values(y, data, rng)
    for c in data.slab_coords:
        z[:, c] = _slab_values(y, data, rng)
    return z, y


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random orthonormal (dim x dim) matrix (scipy's ``ortho_group``); inputs are ``z @ rotation``."""
    check_range("dim", dim, 1, integer=True)
    return np.eye(1) if dim == 1 else ortho_group.rvs(dim, random_state=rng)


def permute_coordinates(z: np.ndarray, coords: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A copy of ``z`` (unrotated, (n, dim)) whose columns ``coords`` are permuted across its rows, all by one
    permutation (the authors' randomisation): each coordinate keeps its marginal and loses its link to the label."""
    z = check_array("z", z, ndim=2).copy()
    for c in coords:
        check_range("coords", c, 0, z.shape[1] - 1, integer=True)
    order = rng.permutation(len(z))
    z[:, list(coords)] = z[order][:, list(coords)]
    return z


def margin_band(z: np.ndarray, data: SlabData, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``z`` (unrotated) whose linear coordinates are redrawn uniformly in the gap (-m, m) that training
    never shows: the simple feature then says nothing, and every slab coordinate still names the class."""
    check_type("data", data, SlabData, "a SlabData")
    z = check_array("z", z, ndim=2).copy()
    m = data.margin * data.width
    for c in data.linear_coords:
        z[:, c] = rng.uniform(-m, m, size=len(z))
    return z


def slab_rule(values: np.ndarray, data: SlabData) -> np.ndarray:
    """The label a five-slab coordinate's value names, cutting at the middle of each gap: 1 for
    s/2 + m < abs(z) < 3s/2 + 3m (an inner slab), else 0 (the centre or a side slab)."""
    check_type("data", data, SlabData, "a SlabData")
    m, s = data.margin * data.width, data.slab_width
    a = np.abs(check_array("values", values))
    return ((a > s / 2 + m) & (a < 1.5 * s + 3 * m)).astype(int)

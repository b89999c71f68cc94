"""The scale axis: a chapter's claims measured at several training-compute scales, and which way each one moves.

A chapter whose claims fail at cpu declares a :class:`Scale` (``SCALE`` in its experiment module): one knob,
``apply(settings, factor)``, that makes the profile's training ``factor`` times as costly (e.g. model width and
epochs together), and ``compute(settings)``, the training compute in FLOPs that the figures and fits put on their
axis. A *sweep* runs the chapter (:func:`~steerlib.core.chapter.execute`, its replicates as at the profile) at every
factor of the profile's ladder (``Scale.factors``) and keeps each claim's value and interval per point; each
point is a cached job (:func:`point`; the ``sweep`` stage of ``python -m steerlib.jobs``), so a cluster or a GPU
extends the same axis with the same command (``--beyond``: the factors past the book's ladder, ``Scale.beyond``,
which the book shows once the run cache holds them; until then it reads what ``make sweeps`` gave, kept in the
repository: :func:`recorded`). A run of a profile without a ladder (paper: other models and
data) keeps its claims in the run cache too, and the sweeps of the other profiles show it beside their points, not
fitted with them.

:func:`fit_trend` turns one claim's points into a verdict on its direction: the least-squares slope of the statistic
on log10 compute with a ``level`` interval, whose standard error is the larger of two estimates, the scatter about
the line (the residuals, n - 2 degrees of freedom) and the points' own noise (each value's standard error over its
replicates, read back from its claim's prediction interval: :func:`standard_error`), so that neither a straight run
of noisy points nor a line through a few exact ones looks firmer than it is. The trend is *towards* holding when the
interval excludes 0 on the threshold's side, *away* when on the other side, *flat* otherwise, and *not judged* with
fewer than ``min_points`` judged points or a span under ``min_span`` in compute. Where it is towards, the compute at
which the line reaches the threshold, with the inverse regression (Fieller) interval, labelled by where it lies: an
extrapolation beyond the largest point, within the points, or below the smallest.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from steerlib.core.checks import check_choice, check_nonempty, check_range, check_type
from steerlib.core.claims import OPS

TRENDS = ("towards", "away", "flat", "not judged")
_NAMES = {  # the words after a count of claims: (one, several)
    "towards": ("trends towards holding", "trend towards holding"),
    "away": ("trends away", "trend away"),
    "flat": ("is flat", "are flat"),
    "not judged": ("is not judged", "are not judged"),
}
WIDEN = 1.1  # the widening of every claim's prediction interval (steerlib.measures.statistics.WIDEN; tested equal)
MIN_POINTS, MIN_SPAN = 5, 16.0  # the least a trend is judged on: 5 judged points spanning 16x in compute
POINT_VERSION = 2  # bump when a point's record changes shape (2: the replicates behind its values)
RECORDED = Path(__file__).resolve().parents[2] / "benchmarks" / "sweeps"  # make sweeps' axes, kept in the repository


@dataclasses.dataclass(frozen=True)
class Scale:
    """A chapter's scale axis: ``knob`` says in words what a factor multiplies; ``apply(settings, factor)`` returns
    the settings at ``factor`` times the training compute; ``compute(settings)`` their training FLOPs; ``claims``
    the ids (or shell-style patterns) of the claims tracked; ``factors[profile]`` the ladder the book runs at each
    profile (1 is the profile itself) and ``beyond`` the factors ``make sweeps`` adds (larger ones, and smaller ones
    where a point costs too much for the book)."""

    knob: str
    apply: Callable[[Any, float], Any]
    compute: Callable[[Any], float]
    claims: tuple[str, ...]
    factors: Mapping[str, tuple[float, ...]]
    beyond: tuple[float, ...] = (2.0, 4.0, 8.0)

    def __post_init__(self):
        check_nonempty("knob", check_type("knob", self.knob, str, "what the factor multiplies, in words"))
        for name in ("apply", "compute"):
            check_type(name, getattr(self, name), Callable, "a function")
        check_nonempty("claims", check_type("claims", self.claims, tuple, "a tuple of claim ids or patterns"))
        check_type("factors", self.factors, Mapping, "a dict: profile -> tuple of factors")
        for profile, ladder in self.factors.items():
            check_nonempty(f"factors[{profile!r}]", check_type(f"factors[{profile!r}]", ladder, tuple, "a tuple"))
            for f in (*ladder, *self.beyond):
                check_range("factor", f, 0.0, open_low=True)
            if 1.0 not in ladder:
                raise ValueError(f"factors[{profile!r}]={ladder} must hold 1 (the profile's own run)")

    def tracks(self, cid: str) -> bool:
        """Whether the claim ``cid`` is on this axis."""
        return any(fnmatch.fnmatchcase(cid, pattern) for pattern in self.claims)

    def past_ladder(self, profile: str) -> tuple[float, ...]:
        """The factors of ``beyond`` that ``profile``'s ladder lacks (none for a profile without a ladder)."""
        ladder = self.factors.get(profile)
        return tuple(f for f in self.beyond if f not in ladder) if ladder else ()


def cube_root_times(n: int, factor: float, multiple: int = 1) -> int:
    """``n`` x ``factor``^(1/3), rounded to a multiple of ``multiple`` (at least ``multiple``): one of three knobs
    (e.g. width, width again through the weights' square, and steps) whose product grows ``factor``-fold."""
    check_range("n", n, 1, integer=True)
    check_range("factor", factor, 0.0, open_low=True)
    check_range("multiple", multiple, 1, integer=True)
    return max(multiple, multiple * round(n * factor ** (1 / 3) / multiple))


def standard_error(half_width: float, replicates: int, level: float = 0.95) -> float:
    """The standard error of a value that is a mean over ``replicates``, from the half-width of its claim's ``level``
    prediction interval for a rerun's mean (:func:`steerlib.measures.statistics.prediction_half_width`: WIDEN ·
    t(n - 1) · s · sqrt(2/n), and se = s / sqrt(n)): half_width / (WIDEN · t(n - 1) · sqrt(2)); 0 without one."""
    check_range("half_width", half_width, 0.0)
    check_range("replicates", replicates, 1, integer=True)
    check_range("level", level, 0.0, 1.0, open_low=True, open_high=True)
    if replicates < 2 or half_width == 0:
        return 0.0
    return float(half_width / (WIDEN * stats.t.ppf(0.5 + level / 2, replicates - 1) * math.sqrt(2)))


# ------------------------------------------------------------------------------------------- the trend


@dataclasses.dataclass(frozen=True)
class Trend:
    """One claim's direction with scale (see the module docstring): the slope of the statistic per decade of
    compute with its interval, the verdict, and where the line reaches the threshold (FLOPs; ``crossing_at`` says
    whether that lies beyond the largest point, an extrapolation, within the points or below the smallest)."""

    claim: str
    verdict: str
    points: int  # judged points fitted
    span: float  # largest / smallest compute among them
    slope: float = math.nan  # statistic per decade of compute
    interval: tuple[float, float] | None = None
    crossing: float = math.nan  # compute where the line reaches the threshold (towards only)
    crossing_interval: tuple[float, float] | None = None
    crossing_at: str = ""  # where the crossing lies: "below the points", "within the points" or "extrapolated"
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The trend as plain data (``metrics.json``)."""
        return dataclasses.asdict(self)


def _direction(op: str) -> int:
    """+1 when larger values hold (``>``, ``>=``), -1 when smaller ones do."""
    return 1 if check_choice("op", op, OPS) in (">", ">=") else -1


def fit_trend(
    claim: str,
    compute: Sequence[float],
    values: Sequence[float],
    standard_errors: Sequence[float],
    threshold: float,
    op: str,
    level: float = 0.95,
    min_points: int = MIN_POINTS,
    min_span: float = MIN_SPAN,
) -> Trend:
    """The trend of one claim over judged points (compute in FLOPs, the statistic's value, its standard error
    se_i): slope b of value on x = log10(compute) by least squares, se(b) = max(sqrt(s^2 / Sxx),
    sqrt(sum((x_i - xbar)^2 se_i^2)) / Sxx) with s^2 = RSS / (n - 2), interval b +/- t(n - 2) se(b); the verdict and
    the crossing as the module docstring says."""
    check_nonempty("claim", check_type("claim", claim, str, "a claim id"))
    x, y, se = (np.asarray(v, dtype=float) for v in (compute, values, standard_errors))
    if not (x.ndim == 1 and x.shape == y.shape == se.shape):
        raise ValueError(
            f"compute, values and standard_errors must be 1-D of one length; got {x.shape}, {y.shape}, {se.shape}"
        )
    if not (np.isfinite(x).all() and (x > 0).all() and np.isfinite(y).all() and (se >= 0).all()):
        raise ValueError(
            "compute must be positive, values finite and standard_errors >= 0 (drop unjudged points first)"
        )
    check_range("threshold", threshold)
    direction = _direction(op)
    check_range("level", level, 0.0, 1.0, open_low=True, open_high=True)
    check_range("min_points", min_points, 3, integer=True)
    check_range("min_span", min_span, 1.0)
    n, span = len(x), float(x.max() / x.min()) if len(x) else 0.0
    if n < min_points or span < min_span:
        return Trend(
            claim,
            "not judged",
            n,
            span,
            note=f"{n} judged points spanning {span:.3g}x; a trend needs {min_points} spanning {min_span:g}x",
        )
    lx = np.log10(x)
    d = lx - lx.mean()
    sxx = float(d @ d)
    a = float(y.mean())  # the line's value at the mean log compute
    b = float(d @ y / sxx) if np.ptp(y) > 0 else 0.0  # a constant statistic (e.g. a rank correlation at -1): flat
    resid = y - a - b * d
    s2 = float(resid @ resid) / (n - 2)
    se_b = max(math.sqrt(s2 / sxx), math.sqrt(float((d**2) @ (se**2))) / sxx)
    se_a = max(math.sqrt(s2 / n), math.sqrt(float(se @ se)) / n)
    t = float(stats.t.ppf(0.5 + level / 2, n - 2))
    low, high = b - t * se_b, b + t * se_b
    verdict = "towards" if direction * low > 0 and direction * high > 0 else "flat"
    if verdict == "flat" and low * high > 0:
        verdict = "away"
    trend = Trend(claim, verdict, n, span, b, (low, high))
    if verdict != "towards":
        return trend
    crossing, interval = _crossing(a, b, se_a, se_b, t, threshold)
    base = lx.mean()
    at = base + crossing
    return dataclasses.replace(
        trend,
        crossing=10**at,
        crossing_interval=None if interval is None else (10 ** (base + interval[0]), 10 ** (base + interval[1])),
        crossing_at="extrapolated" if at > lx.max() else "below the points" if at < lx.min() else "within the points",
    )


def _crossing(a: float, b: float, se_a: float, se_b: float, t: float, threshold: float):
    """Where a + b d reaches ``threshold`` (d from the mean log compute), with the Fieller interval: the d where
    (a + b d - threshold)^2 <= t^2 (se_a^2 + d^2 se_b^2); None when the slope is not clear of 0 at this level."""
    d0 = (threshold - a) / b
    qa = b * b - t * t * se_b * se_b
    if qa <= 0:
        return d0, None
    qb = 2 * b * (a - threshold)
    qc = (a - threshold) ** 2 - t * t * se_a * se_a
    root = math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
    return d0, ((-qb - root) / (2 * qa), (-qb + root) / (2 * qa))


# ------------------------------------------------------------------------------------------- the sweep


@dataclasses.dataclass(frozen=True)
class Point:
    """A chapter run at one factor of its scale: its training FLOPs, its claims (``Claim.as_dict`` records) and the
    replicates their values are means over (its settings' ``replicates``)."""

    factor: float
    compute: float
    claims: tuple[dict, ...]
    replicates: int = 1


@functools.cache
def library_hash() -> str:
    """First 12 hex digits of the SHA-256 of the code of every module of steerlib (its syntax tree, without
    docstrings or comments): a point's claims depend on the chapter, its part's common module, the measures and the
    claims machinery, so any change to the library's code recomputes the cached points' claims (their trained runs
    stay cached, and language-model chapters cache their results whole); a change to its prose does not."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]  # the docstring
        digest.update(str(path.relative_to(root)).encode() + ast.dump(tree).encode())
    return digest.hexdigest()[:12]


def _key(chapter, settings: Any, seed: int) -> dict:
    """A point's run-cache key: the chapter, its settings at the factor, the seed, its claims' specifications and the
    library's source."""
    return {
        "chapter": chapter.name,
        "settings": settings,
        "seed": seed,
        "specs": [s.fingerprint() for s in chapter.specs],
        "source": library_hash(),
        "version": POINT_VERSION,
    }


def point(
    package: str,
    profile: str,
    seed: int,
    factor: float,
    base: Any = None,
    compute_missing: bool = True,
    device: str = "auto",
    cache: bool = True,
) -> Point | None:
    """The chapter of ``package`` at ``profile`` and ``seed`` with its scale's knob at ``factor`` of ``base`` (its
    settings; default the profile's): run on ``device`` (its claims judged, nothing recorded) and kept in the run
    cache unless ``cache`` is False, or read from it; None when missing and not ``compute_missing`` (a point ``make
    sweeps`` has not run). A module-level function, so that a job or a cluster task can run it."""
    from steerlib.core.chapter import Chapter, execute

    chapter = Chapter.of(package)
    if chapter.scale is None:
        raise ValueError(f"chapter {chapter.name!r} has no scale axis (SCALE in its experiment module)")
    check_range("factor", factor, 0.0, open_low=True)
    profile_settings = chapter.settings(profile)
    base = (
        profile_settings if base is None else check_type("base", base, chapter.settings_type, "the chapter's Settings")
    )
    settings = base if factor == 1.0 else chapter.scale.apply(base, factor)  # 1: the profile's own run (paper's too)
    changed = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if getattr(settings, f.name) != getattr(profile_settings, f.name)
    }

    def run() -> Point:
        ex = execute(chapter, profile, seed, device=device, cache=cache, record=False, **changed)
        if ex.settings != settings:
            raise RuntimeError(f"the point at factor {factor:g} ran other settings than its cache key holds")
        claims = tuple(c.as_dict() for c in ex.claims)
        return Point(factor, float(chapter.scale.compute(settings)), claims, getattr(settings, "replicates", 1))

    from steerlib.core.cache import RunCache

    store, key = RunCache(enabled=check_type("cache", cache, bool, "True or False")), _key(chapter, settings, seed)
    if not compute_missing:
        return store.load("sweep-point", key, as_type=Point)
    return store.cached("sweep-point", key, run, as_type=Point)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A chapter's points along its scale and each tracked claim's :class:`Trend`; ``missing`` lists the factors
    beyond the book's that the run cache does not hold yet; ``beside`` the run of each profile without a ladder
    (paper: other models and data) at the same seed, shown beside the points and not fitted (None where the run
    cache does not hold it); ``recorded`` the whole axis kept in the repository (:func:`recorded`) where the run
    cache lacks some of its factors."""

    chapter: str
    knob: str
    points: tuple[Point, ...]
    trends: dict[str, Trend]
    missing: tuple[float, ...] = ()
    beside: Mapping[str, Point | None] = dataclasses.field(default_factory=dict)
    recorded: Mapping[str, Any] | None = None

    def series(self, cid: str) -> list[tuple[float, float, tuple[float, float] | None, bool]]:
        """Claim ``cid`` at every point: (compute, value, interval, judged), in order of compute."""
        rows = []
        for p in self.points:
            for c in p.claims:
                if c["id"] == cid:
                    interval = tuple(c["interval"]) if c["interval"] is not None else None
                    rows.append((p.compute, float(c["value"]), interval, bool(c["judged"])))
        return sorted(rows, key=lambda r: r[0])

    def as_dict(self) -> dict[str, Any]:
        """The sweep as plain data (``metrics.json``'s ``sweep``): the knob, each point's factor, compute and the
        tracked claims' value, interval and verdict, every trend, and the runs beside the sweep likewise."""

        def record(p: Point) -> dict[str, Any]:
            return {
                "factor": p.factor,
                "compute": p.compute,
                "claims": {
                    c["id"]: {"value": c["value"], "interval": c["interval"], "verdict": c["verdict"]}
                    for c in p.claims
                    if c["id"] in self.trends
                },
            }

        return {
            "knob": self.knob,
            "points": [record(p) for p in self.points],
            "missing": list(self.missing),
            "trends": {cid: t.as_dict() for cid, t in self.trends.items()},
            "beside": {profile: record(p) if p else None for profile, p in self.beside.items()},
        }


def trends(points: Sequence[Point], scale: Scale) -> dict[str, Trend]:
    """:func:`fit_trend` of every tracked claim over the points where it is judged with a finite value."""
    for p in check_nonempty("points", check_type("points", points, (list, tuple), "a list of Points")):
        check_type("points", p, Point, "a list of Points")
    check_type("scale", scale, Scale, "the chapter's Scale")
    out = {}
    for cid, ref in reference_claims(points, scale).items():
        rows = [
            (p.compute, c["value"], _point_se(c, p.replicates))
            for p in points
            for c in p.claims
            if c["id"] == cid and c["judged"] and math.isfinite(c["value"])
        ]
        compute, values, se = (list(col) for col in zip(*rows)) if rows else ([], [], [])
        out[cid] = fit_trend(cid, compute, values, se, ref["threshold"], ref["op"])
    return out


def reference_claims(points: Sequence[Point], scale: Scale) -> dict[str, dict]:
    """Each tracked claim's record at the profile's own point (factor 1), else at the last point holding it: the
    threshold a trend is read against (a measured threshold, such as a noise floor, moves from point to point)."""
    for p in check_nonempty("points", check_type("points", points, (list, tuple), "a list of Points")):
        check_type("points", p, Point, "a list of Points")
    check_type("scale", scale, Scale, "the chapter's Scale")
    out: dict[str, dict] = {}
    for p in sorted(points, key=lambda p: p.factor == 1.0):  # the profile's point last, so that it wins
        out.update({c["id"]: c for c in p.claims if scale.tracks(c["id"])})
    return out


def _point_se(claim: dict, replicates: int) -> float:
    """:func:`standard_error` of a claim record's value (0 without an interval)."""
    low_high = claim["interval"]
    return standard_error((low_high[1] - low_high[0]) / 2, replicates) if low_high else 0.0


def recorded(chapter: str, profile: str, seed: int, root: Path | None = None) -> dict[str, Any] | None:
    """The sweep of ``chapter`` kept at ``root/<chapter>/metrics.json`` (``root`` by default ``RECORDED``; the
    chapter's ``metrics.json`` once the run cache held every factor of its axis), with ``finished`` (when it was
    written) and ``path``, if it ran at ``profile`` and ``seed`` with no factor missing; None where none is kept (an
    installed package has no ``benchmarks``), it ran at another profile or seed, or it is not a whole axis."""
    check_type("chapter", chapter, str, "a chapter's name, e.g. 'mechanism'")
    check_type("profile", profile, str, "a profile's name, e.g. 'cpu'")
    check_range("seed", seed, 0, integer=True)
    path = (RECORDED if root is None else Path(root)) / chapter / "metrics.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    config, kept = record.get("config", {}), record.get("sweep")
    if (config.get("profile"), config.get("seed")) != (profile, seed) or not kept or kept.get("missing"):
        return None
    return {**kept, "finished": record.get("finished", "?"), "path": path}


def sweep(ex, *, beyond: bool = True) -> Sweep:
    """The scale sweep of the chapter run ``ex`` (an :class:`~steerlib.core.chapter.Execution`): ``ex`` itself at
    factor 1, every other factor of its profile's ladder (computed, or read from the run cache), and when ``beyond``
    the factors of ``Scale.beyond`` that the run cache holds; every tracked claim's trend; and the run at the same seed
    of each profile without a ladder, read from the run cache. A run of such a profile (paper) keeps its own point
    there for that, and gets an empty sweep."""
    from steerlib.core.chapter import Execution

    check_type("ex", ex, Execution, "the Execution of a chapter (steerlib.book.execute)")
    check_type("beyond", beyond, bool, "True or False")
    chapter, run = ex.chapter, ex.run
    if chapter.scale is None:
        raise ValueError(f"chapter {chapter.name!r} has no scale axis (SCALE in its experiment module)")
    scale = chapter.scale
    claims = tuple(c.as_dict() for c in ex.claims)
    here = Point(1.0, float(scale.compute(ex.settings)), claims, getattr(ex.settings, "replicates", 1))
    if run.profile not in scale.factors:  # e.g. paper: other models and data, kept to be shown beside a sweep
        if run.cache.enabled:
            run.cache.save("sweep-point", _key(chapter, ex.settings, run.seed), here)
        return Sweep(chapter.name, scale.knob, (), {})
    ladder = [f for f in scale.factors[run.profile] if f != 1.0]
    where = {"base": ex.settings, "device": str(run.device), "cache": run.cache.enabled}
    beside = {
        other: point(chapter.package, other, run.seed, 1.0, compute_missing=False, cache=run.cache.enabled)
        for other in chapter.profiles
        if other not in scale.factors
    }
    points = [here, *(point(chapter.package, run.profile, run.seed, f, **where) for f in ladder)]
    missing = []
    for f in scale.past_ladder(run.profile) if beyond else ():
        found = point(chapter.package, run.profile, run.seed, f, compute_missing=False, **where)
        if found is None:
            missing.append(f)
        else:
            points.append(found)
    points.sort(key=lambda p: p.compute)
    kept = recorded(chapter.name, run.profile, run.seed) if missing else None
    return Sweep(chapter.name, scale.knob, tuple(points), trends(points, scale), tuple(missing), beside, kept)


def _sci(x: float) -> str:
    """``x`` in two significant digits ('' for NaN)."""
    return f"{x:.2g}" if math.isfinite(x) else ""


def table(sweep: Sweep):
    """The trends as a pandas DataFrame, one row per claim: judged points, their span, the slope per decade of
    compute with its interval, the trend, where the line reaches the threshold (and whether that is extrapolated,
    within or below the points), and the value and verdict of each run beside the sweep that the run cache holds."""
    import pandas as pd

    check_type("sweep", sweep, Sweep, "a Sweep (steerlib.core.scale.sweep)")
    rows = []
    if not sweep.trends:
        return pd.DataFrame(rows, columns=["claim", "with scale"]).set_index("claim")
    beside = {profile: {c["id"]: c for c in p.claims} for profile, p in sweep.beside.items() if p}
    for cid, t in sweep.trends.items():
        slope = f"{t.slope:+.3g} [{t.interval[0]:+.3g}, {t.interval[1]:+.3g}]" if t.interval else ""
        reach = ""
        if t.verdict == "towards":
            around = f" [{_sci(t.crossing_interval[0])}, {_sci(t.crossing_interval[1])}]" if t.crossing_interval else ""
            reach = f"{_sci(t.crossing)}{around} ({t.crossing_at})"
        rows.append(
            {
                "claim": cid,
                "judged points": t.points,
                "span": f"{t.span:.3g}x" if t.points else "",
                "slope per decade [interval]": slope,
                "with scale": t.verdict,
                "threshold reached at FLOPs": reach,
                **{
                    f"at {profile} (not fitted)": f"{c[cid]['value']:.3g} ({c[cid]['verdict']})" if cid in c else ""
                    for profile, c in beside.items()
                },
            }
        )
    return pd.DataFrame(rows).set_index("claim")


def _beside_sentence(profile: str, found: Point | None, here: float, tracked: Iterable[str]) -> str:
    """What the run of ``profile`` beside the sweep shows of the ``tracked`` claims, or how to make it (``here``:
    this run's compute)."""
    if found is None:
        return (
            f"The `{profile}` profile (its own models and data) has not run at this seed with this version of the "
            f"library in this run cache; once it has (`profile='{profile}'`, on a GPU), it is shown beside the points, "
            "not fitted with them."
        )
    tracked = set(tracked)
    if not tracked & {c["id"] for c in found.claims}:
        return (
            f"The `{profile}` profile's run shares none of these claims (its claims name other datasets or settings)."
        )
    judged = [c for c in found.claims if c["id"] in tracked and c["judged"] and c["kind"] == "evidence"]
    known = here and math.isfinite(found.compute)  # a hub model's pretraining may be unknown (NaN)
    where = f"at {found.compute:.2g} training FLOPs, {found.compute / here:.2g}x this run's, " if known else ""
    return (
        f"The `{profile}` profile's run is shown beside the points ({where}its own models and data, so not fitted): "
        f"{sum(c['holds'] for c in judged)} of the {len(judged)} tracked evidence claims judged there hold."
    )


def _verdict_counts(trends: Mapping[str, str]) -> str:
    """How many claims have each trend verdict, in words: 'n trend towards holding (ids); n are flat; ...' (the
    verdicts no claim has left out, the ids where at most 12 share one)."""
    by = {v: [cid for cid, verdict in trends.items() if verdict == v] for v in TRENDS}
    return "; ".join(
        f"{len(ids)} {_NAMES[v][len(ids) > 1]}" + (f" ({', '.join(ids)})" if len(ids) <= 12 else "")
        for v, ids in by.items()
        if ids
    )


def _times(ratio: float) -> str:
    """A ratio of computes as '21.7x' or '1,050x'."""
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def _recorded_sentence(kept: Mapping[str, Any]) -> str:
    """What the whole axis kept in the repository (:func:`recorded`) shows: its points and each trend verdict."""
    computes = [p["compute"] for p in kept["points"]]
    return (
        f"The whole axis, the book's points with those of `make sweeps`, as written to "
        f"`benchmarks/sweeps/{Path(kept['path']).parent.name}/metrics.json` on {kept['finished'][:10]} (read here, "
        f"not recomputed): {len(computes)} points from {min(computes):.2g} to {max(computes):.2g} training FLOPs "
        f"({_times(max(computes) / min(computes))}). Of its {len(kept['trends'])} claims, "
        f"{_verdict_counts({cid: t['verdict'] for cid, t in kept['trends'].items()})}."
    )


def summary(sweep: Sweep, claims: Iterable[Any] = ()):
    """A Markdown paragraph, generated from the sweep: how many points at which compute, how many claims trend
    towards holding, away, flat or are not judged, and the range a flat trend speaks for; then, for each evidence
    claim of ``claims`` (the run's) that does not hold or trends away, its trend in a sentence; the runs beside the
    sweep (or how to make them); the factors the run cache does not hold yet, and what the axis kept in the repository
    shows (:func:`recorded`)."""
    from IPython.display import Markdown

    check_type("sweep", sweep, Sweep, "a Sweep (steerlib.core.scale.sweep)")
    if not sweep.points:
        return Markdown(
            "This profile has no scale axis: its models and data are the dissertation's kind, not points on the "
            "knob, so it is shown beside the sweep of the `cpu` profile, not fitted with it."
        )
    computes = [p.compute for p in sweep.points]
    decades = math.log10(max(computes) / min(computes))
    replicates = sorted({p.replicates for p in sweep.points})
    where = (
        f"{len(sweep.points)} points from {min(computes):.2g} to {max(computes):.2g} training FLOPs "
        f"({_times(max(computes) / min(computes))}"
        if len(sweep.points) > 1
        else f"1 point, at {computes[0]:.2g} training FLOPs (this run"
    )
    head = [
        f"**{where}; knob: {sweep.knob}).** Of {len(sweep.trends)} claims, "
        + _verdict_counts({cid: t.verdict for cid, t in sweep.trends.items()})
        + (
            f". The points span {decades:.2g} decades of compute at {'-'.join(map(str, replicates))} replicates a "
            "point: a flat trend says the statistic does not move measurably over that range, not that the claim "
            "fails further up."
            if len(sweep.points) > 1
            else f". A trend needs {MIN_POINTS} judged points spanning {MIN_SPAN:g}x."
        )
    ]
    bullets, unjudged = [], []
    here = next((p.compute for p in sweep.points if p.factor == 1.0), 0.0)  # this run's compute
    for c in claims:
        t = sweep.trends.get(c.id)
        if t is None or c.kind != "evidence" or (c.holds and t.verdict != "away"):
            continue
        if t.verdict == "not judged":
            unjudged.append(c.id)
            continue
        slope = f", slope {t.slope:+.3g} [{t.interval[0]:+.3g}, {t.interval[1]:+.3g}] per decade" if t.interval else ""
        reach = ""
        if t.verdict == "towards" and here and not math.isnan(t.crossing):
            reach = (
                f"; the line reaches the threshold at {_sci(t.crossing)} FLOPs, {t.crossing / here:.2g}x this run's "
                f"compute ({'an extrapolation' if t.crossing_at == 'extrapolated' else t.crossing_at})"
            )
        bullets.append(f"- **{c.id}** ({c.verdict} here): {t.verdict} with scale{slope}{reach}.")
    if unjudged:
        bullets.append(
            f"- Not judged with scale, for want of {MIN_POINTS} judged points spanning {MIN_SPAN:g}x (a prerequisite "
            "fails at the smaller points, the statistic is undefined there, or the run cache lacks them): "
            f"{', '.join(unjudged)}."
        )
    tail = [_beside_sentence(profile, p, here, sweep.trends) for profile, p in sweep.beside.items()]
    if sweep.missing:
        tail.append(
            f"Factors {', '.join(f'{f:g}' for f in sweep.missing)} of the axis are not in the run cache; "
            f"`make sweeps` computes them (`python -m steerlib.jobs {sweep.chapter} --stage sweep --beyond`)."
        )
    if sweep.recorded:
        tail.append(_recorded_sentence(sweep.recorded))
    return Markdown("\n\n".join(part for part in (head[0], "\n".join(bullets), *tail) if part))

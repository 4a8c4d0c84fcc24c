"""mgeval's comparison procedure (Yang & Lerch 2020), vectorised.

For each feature: the *intra-set* distances (every piece against the other pieces of its own set:
leave-one-out) of the generated set and of the reference set, and the *inter-set* distances (every
generated piece against every reference piece). Each group of distances is smoothed with a Gaussian
kernel density estimate (``scipy.stats.gaussian_kde``), and two densities are compared by their
**overlap area** (the integral of the smaller of the two: 1 = identical, 0 = disjoint) and their
**KL divergence** (0 = identical). Both are integrated on one shared, evenly spaced grid.

Distances are Euclidean between feature values (absolute difference for a scalar, the Euclidean norm for a
histogram or matrix), as mgeval's ``c_dist``; seed 000's grouped-pitch Manhattan distance is already a
distance between two pieces and is used as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .features import grouped_pitch_manhattan_pairs

DEFAULT_MAX_PAIRS = 20_000  # distances per group; above this, pairs are sampled at random (seeded)
KDE_GRID = 512
KDE_MAX_POINTS = 5_000  # points the KDE is built on (sampled from the distances when there are more)


# ------------------------------------------------------------------ pairs
def intra_pairs(n: int, max_pairs: int = DEFAULT_MAX_PAIRS, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs i < j of n pieces, or ``max_pairs`` of them drawn uniformly (i != j)."""
    total = n * (n - 1) // 2
    if total <= max_pairs:
        i, j = np.triu_indices(n, 1)
        return i, j
    rng = np.random.default_rng(0) if rng is None else rng
    i = rng.integers(0, n, max_pairs)
    j = (i + rng.integers(1, n, max_pairs)) % n  # never i itself
    return i, j


def inter_pairs(n: int, m: int, max_pairs: int = DEFAULT_MAX_PAIRS, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """All n*m (generated, reference) pairs, or ``max_pairs`` of them drawn uniformly."""
    if n * m <= max_pairs:
        i, j = np.divmod(np.arange(n * m), m)
        return i, j
    rng = np.random.default_rng(1) if rng is None else rng
    return rng.integers(0, n, max_pairs), rng.integers(0, m, max_pairs)


def feature_distances(x: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Euclidean distance between x[i] and y[j] (features flattened per piece)."""
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    if x.shape[1] == 1:
        return np.abs(x[i, 0] - y[j, 0])
    out = np.empty(len(i))
    for k in range(0, len(i), chunk):
        out[k:k + chunk] = np.sqrt(((x[i[k:k + chunk]] - y[j[k:k + chunk]]) ** 2).sum(1))
    return out


# ------------------------------------------------------------------ densities
@dataclass
class Density:
    """A 1-D density estimate that never fails: a Gaussian KDE, or, when the sample has (almost) no spread,
    a narrow Gaussian at its value (``degenerate``); ``None`` when there are no finite values."""

    values: np.ndarray
    kde: object | None = None
    degenerate: bool = False
    point: float = 0.0
    width: float = 0.0

    @classmethod
    def fit(cls, values: np.ndarray, max_points: int = KDE_MAX_POINTS, seed: int = 0) -> "Density":
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        if len(v) > max_points:
            v = np.random.default_rng(seed).choice(v, max_points, replace=False)
        d = cls(v)
        if len(v) == 0:
            return d
        spread = float(v.std())
        if len(v) < 2 or spread <= 1e-9 * max(1.0, float(np.abs(v).max())):
            d.degenerate, d.point = True, float(v.mean())
            d.width = 1e-3 * max(1.0, abs(d.point))
            return d
        try:
            d.kde = stats.gaussian_kde(v)
        except (np.linalg.LinAlgError, ValueError):
            d.degenerate, d.point, d.width = True, float(v.mean()), max(spread, 1e-3)
        return d

    @property
    def empty(self) -> bool:
        return len(self.values) == 0

    @property
    def bandwidth(self) -> float:
        if self.kde is not None:
            return float(np.sqrt(self.kde.covariance[0, 0]))
        return self.width

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.empty:
            return np.zeros_like(x)
        if self.kde is not None:
            # the same sum of Gaussians as gaussian_kde.evaluate, as one vectorised expression (faster in 1-D)
            h = self.bandwidth
            x = np.asarray(x, float)
            out = np.empty(len(x))
            step = max(1, 2_000_000 // max(1, len(self.values)))
            for k in range(0, len(x), step):
                z = (x[k:k + step, None] - self.values[None, :]) / h
                out[k:k + step] = np.exp(-0.5 * z * z).sum(1)
            return out / (len(self.values) * h * np.sqrt(2 * np.pi))
        return stats.norm.pdf(x, self.point, self.width)


def common_grid(densities: list[Density], n: int = KDE_GRID) -> np.ndarray:
    """One grid covering every density's data plus 3 bandwidths on each side (so that an identical pair
    of densities overlaps by ~1, which mgeval's min-to-max integration range does not give)."""
    lo, hi = [], []
    for d in densities:
        if d.empty:
            continue
        lo.append(d.values.min() - 3 * d.bandwidth)
        hi.append(d.values.max() + 3 * d.bandwidth)
    if not lo:
        return np.linspace(0, 1, n)
    a, b = min(lo), max(hi)
    if b - a <= 0:
        b = a + 1.0
    # a degenerate density is narrower than the grid step: make sure its peak lies on the grid
    grid = np.linspace(a, b, n)
    extra = [d.point for d in densities if d.degenerate]
    if extra:
        w = min(d.width for d in densities if d.degenerate)
        extra_pts = np.concatenate([p + w * np.linspace(-4, 4, 33) for p in extra])
        grid = np.unique(np.concatenate([grid, extra_pts]))
    return grid


def overlap_area(p: Density, q: Density, grid: np.ndarray | None = None) -> float:
    """Integral of min(p, q) on the grid (trapezoids): 1 = same distribution, 0 = disjoint."""
    if p.empty or q.empty:
        return float("nan")
    grid = common_grid([p, q]) if grid is None else grid
    return overlap_from_values(p(grid), q(grid), grid)


def kl_divergence(p: Density, q: Density, grid: np.ndarray | None = None, floor: float = 1e-10) -> float:
    """KL(p || q) in nats on the grid. q is floored at ``floor`` times its peak so that a far-away p gives a
    large finite number rather than infinity. (mgeval evaluates p and q on two *different* grids, each on
    its own data range, and then compares the values point by point; we use one grid.)"""
    if p.empty or q.empty:
        return float("nan")
    grid = common_grid([p, q]) if grid is None else grid
    return kl_from_values(p(grid), q(grid), grid, floor)


def overlap_from_values(pv: np.ndarray, qv: np.ndarray, grid: np.ndarray) -> float:
    return float(np.clip(np.trapezoid(np.minimum(pv, qv), grid), 0.0, 1.0))


def kl_from_values(pv: np.ndarray, qv: np.ndarray, grid: np.ndarray, floor: float = 1e-10) -> float:
    zp, zq = np.trapezoid(pv, grid), np.trapezoid(qv, grid)
    if zp <= 0 or zq <= 0:
        return float("nan")
    pv, qv = pv / zp, qv / zq
    qv = np.maximum(qv, floor * max(qv.max(), 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = np.where(pv > 0, pv * np.log(np.where(pv > 0, pv, 1) / qv), 0.0)
    return float(max(np.trapezoid(integrand, grid), 0.0))


# ------------------------------------------------------------------ one feature, all of it
@dataclass
class FeatureComparison:
    name: str
    intra_gen: np.ndarray
    intra_ref: np.ndarray
    inter: np.ndarray
    grid: np.ndarray = field(repr=False, default=None)
    pdf: dict = field(repr=False, default_factory=dict)
    stats: dict = field(default_factory=dict)


def compare_distances(name: str, intra_gen: np.ndarray, intra_ref: np.ndarray, inter: np.ndarray,
                      max_points: int = KDE_MAX_POINTS) -> FeatureComparison:
    """KDEs of the three distance groups and their overlap areas / KL divergences."""
    dg, dr, di = (Density.fit(v, max_points, seed=s) for s, v in enumerate((intra_gen, intra_ref, inter)))
    grid = common_grid([dg, dr, di])
    pg, pr, pi = dg(grid), dr(grid), di(grid)  # each density evaluated once
    fin = (lambda v: v[np.isfinite(v)])
    mean = (lambda v: float(np.mean(fin(v))) if len(fin(v)) else float("nan"))

    def pair(a: Density, av: np.ndarray, b: Density, bv: np.ndarray) -> tuple[float, float]:
        if a.empty or b.empty:
            return float("nan"), float("nan")
        return overlap_from_values(av, bv, grid), kl_from_values(av, bv, grid)

    oa_r, kl_r = pair(dr, pr, di, pi)
    oa_g, kl_g = pair(dg, pg, di, pi)
    oa_d, kl_d = pair(dg, pg, dr, pr)
    st = {
        # headline: do generated pieces sit as close to the reference pieces as those sit to each other?
        "overlap_ref_intra_vs_inter": oa_r, "kl_ref_intra_vs_inter": kl_r,
        # mgeval also reports the generated set's own intra-set vs inter-set
        "overlap_gen_intra_vs_inter": oa_g, "kl_gen_intra_vs_inter": kl_g,
        # diversity (seed 000's KDE plots): is the generated set as varied as the reference?
        "overlap_gen_intra_vs_ref_intra": oa_d, "kl_gen_intra_vs_ref_intra": kl_d,
        "mean_intra_gen": mean(intra_gen), "mean_intra_ref": mean(intra_ref), "mean_inter": mean(inter),
        "n_distances": [int(len(fin(intra_gen))), int(len(fin(intra_ref))), int(len(fin(inter)))],
        "degenerate": [d.degenerate for d in (dg, dr, di)],
    }
    pdf = {"intra_gen": pg, "intra_ref": pr, "inter": pi}
    return FeatureComparison(name, intra_gen, intra_ref, inter, grid, pdf, st)


def compare_sets(gen: dict[str, np.ndarray], ref: dict[str, np.ndarray], names: list[str],
                 groups: tuple | None = None, max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = 0,
                 max_points: int = KDE_MAX_POINTS) -> dict[str, FeatureComparison]:
    """The mgeval table: for each feature name, intra/inter distances, KDEs, overlap areas, KL.

    ``gen`` and ``ref`` map feature names to [pieces, ...] arrays (NaN rows are left out of that feature).
    ``groups`` = ((S_gen, L_gen), (S_ref, L_ref)) adds seed 000's grouped-pitch Manhattan distance."""
    rng = np.random.default_rng(seed)
    n, m = len(next(iter(gen.values()))), len(next(iter(ref.values())))
    gi, gj = intra_pairs(n, max_pairs, rng)
    ri, rj = intra_pairs(m, max_pairs, rng)
    xi, xj = inter_pairs(n, m, max_pairs, rng)
    out: dict[str, FeatureComparison] = {}
    for name in names:
        g, r = gen[name], ref[name]
        out[name] = compare_distances(name, feature_distances(g, g, gi, gj), feature_distances(r, r, ri, rj),
                                      feature_distances(g, r, xi, xj), max_points)
    if groups is not None:
        (Sg, Lg), (Sr, Lr) = groups
        out["grouped_pitch_manhattan"] = compare_distances(
            "grouped_pitch_manhattan",
            grouped_pitch_manhattan_pairs(Sg, Lg, gi, gj), grouped_pitch_manhattan_pairs(Sr, Lr, ri, rj),
            grouped_pitch_manhattan_pairs(Sg, Lg, xi, xj, Sr, Lr), max_points)
    return out

"""An independent Python reference for the clinic quality review's statistics (docs/QUALITY_REVIEW.md).

Written from the method's definitions, not from the SQL macros, so that the tests compare two
implementations: funnel limits on the arcsine scale, the exact binomial limits they approximate,
winsorised over-dispersion with DerSimonian-Laird tau2 (iterated on the random-effects scale), O/E by
indirect standardisation, and Steiner's risk-adjusted CUSUM written as the plain recursion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z_ALERT = 1.959964  # two-sided 95 %
Z_ALARM = 3.090232  # two-sided 99.8 %
TRIM = 0.1
# E[min(max(Z, -q), q)^2] for Z ~ N(0, 1), q its 0.9 quantile: 1 - 2 t - 2 q pdf(q) + 2 t q^2 with t = 0.1.
_Q = stats.norm.ppf(1 - TRIM)
WINSOR_CONSISTENCY = 1 - 2 * TRIM - 2 * _Q * stats.norm.pdf(_Q) + 2 * TRIM * _Q * _Q
MIN_CLINICS = 3
ITERATIONS = 6


def pr_limit(p0: float, n: float, z: float, tau2: float = 0.0) -> tuple[float, float]:
    """Arcsine-scale funnel limits sin^2(asin sqrt p0 -/+ z sqrt(1/4n + tau2)), angle kept in [0, pi/2]."""
    centre = math.asin(math.sqrt(p0))
    half = z * math.sqrt(1 / (4 * n) + tau2)
    low = max(0.0, centre - half)
    high = min(math.pi / 2, centre + half)
    return math.sin(low) ** 2, math.sin(high) ** 2


def exact_binomial_limit(p0: float, n: int, prob: float) -> float:
    """Spiegelhalter (2005) A.1.1: r_p = smallest r with F(r) >= prob, alpha = (F(r_p) - prob) /
    (F(r_p) - F(r_p - 1)), limit = (r_p - alpha) / n, with F the Binomial(n, p0) CDF."""
    r = int(stats.binom.ppf(prob, n, p0))
    f_r = stats.binom.cdf(r, n, p0)
    f_prev = stats.binom.cdf(r - 1, n, p0) if r > 0 else 0.0
    alpha = (f_r - prob) / (f_r - f_prev)
    return min(1.0, max(0.0, (r - alpha) / n))


def type7_quantile(values: Sequence[float], prob: float) -> float:
    """R's default quantile: linear between order statistics at position prob (I - 1)."""
    xs = sorted(values)
    h = prob * (len(xs) - 1)
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def chi2_95(df: int) -> float:
    return float(stats.chi2.ppf(0.95, df))


@dataclass(frozen=True)
class Dispersion:
    clinics: int
    q: float | None
    phi: float | None
    overdispersed: bool
    tau2: float


def _phi_and_tau2(y: np.ndarray, t: float, s2: np.ndarray, tau2: float) -> tuple[float, float]:
    u = (y - t) / np.sqrt(s2 + tau2)
    lo, hi = type7_quantile(list(u), TRIM), type7_quantile(list(u), 1 - TRIM)
    z_back = np.clip(u, lo, hi) * np.sqrt((s2 + tau2) / s2)
    phi = float(np.mean(z_back**2) / WINSOR_CONSISTENCY)
    w = 1 / s2
    i = len(y)
    denom = w.sum() - (w**2).sum() / w.sum()
    new_tau2 = max(0.0, (i * phi - (i - 1)) / denom) if denom > 0 else 0.0
    return phi, new_tau2


def dispersion(
    y: Sequence[float], target: float, s2: Sequence[float], iterations: int = ITERATIONS
) -> Dispersion:
    """Cochran's Q = sum z^2 against chi-square(I - 1) at 95 % decides; phi from winsorised z-scores
    (divided by the normal consistency factor); DerSimonian-Laird tau2 re-estimated `iterations` times
    with the winsorisation done on the random-effects scale."""
    ya, sa = np.asarray(y, dtype=float), np.asarray(s2, dtype=float)
    i = len(ya)
    if i < MIN_CLINICS:
        return Dispersion(i, None, None, False, 0.0)
    q = float(np.sum((ya - target) ** 2 / sa))
    phi, tau2 = _phi_and_tau2(ya, target, sa, 0.0)
    if not q > chi2_95(i - 1):
        return Dispersion(i, q, phi, False, 0.0)
    for _ in range(iterations - 1):
        _, tau2 = _phi_and_tau2(ya, target, sa, tau2)
    return Dispersion(i, q, phi, True, tau2)


def crude_funnel(
    numerators: Sequence[int], denominators: Sequence[int], p0: float
) -> tuple[Dispersion, np.ndarray]:
    """Dispersion and the adjusted z-scores of a crude (arcsine) funnel."""
    r, n = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    y = np.arcsin(np.sqrt(r / n))
    t = math.asin(math.sqrt(p0))
    s2 = 1 / (4 * n)
    d = dispersion(y, t, s2)
    return d, (y - t) / np.sqrt(s2 + d.tau2)


def cusum(failed: Sequence[bool], q: Sequence[float], odds: float) -> list[float]:
    """Steiner's chart as the recursion S_t = max(0, S_(t-1) + W_t), W = failed ln R - ln(1 - q + R q)."""
    s = 0.0
    out = []
    for f, qq in zip(failed, q, strict=True):
        w = (math.log(odds) if f else 0.0) - math.log(1 - qq + odds * qq)
        s = max(0.0, s + w)
        out.append(s)
    return out


def cusum_signals(path: Sequence[float], h: float) -> list[bool]:
    """First course of each excursion above 0 at which the chart reaches h (no reset after a signal)."""
    out = []
    signalled = False
    for s in path:
        hit = s >= h and not signalled
        out.append(hit)
        if hit:
            signalled = True
        if s <= 0:
            signalled = False
    return out

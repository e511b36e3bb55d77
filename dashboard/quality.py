"""What the clinic quality review says in words: the method on the chart, the outlier table, who is not
plotted and why, and the one banner. Pure functions of the quality marts' rows (docs/QUALITY_REVIEW.md),
shared by the dashboard page and the monthly pack so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from dashboard.format import SUPPRESSED, format_value, hidden, is_missing
from dashboard.labels import LIMIT_CROSSED, NOT_PLOTTED_REASONS, direction_text, metric_label

Funnel = Literal["crude", "oe"]


@dataclass(frozen=True)
class GroupSummary:
    """The group-level figures every row of one (period, cohort, metric) carries."""

    adjustment: str | None  # random_effects, none, not_assessed
    clinics_assessed: int
    q: float | None
    chi2: float | None
    phi: float | None
    tau2: float | None
    target: float | None  # the registry rate (crude) or 1 (O/E)
    method: str | None


def _num(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def summary(rows: pd.DataFrame, kind: Funnel = "crude") -> GroupSummary | None:
    """The group's figures from any of its rows (they are the same on every row)."""
    if rows is None or rows.empty:
        return None
    r = rows.iloc[0].to_dict()
    target: float | None = 1.0 if kind == "oe" else None
    if kind == "crude":
        shown_targets = [x for x in rows.to_dict("records") if not hidden(x, "target_rate")]
        target = _num(shown_targets[0].get("target_rate")) if shown_targets else None
    assessed = r.get("clinics_assessed")
    return GroupSummary(
        adjustment=None if is_missing(r.get("adjustment")) else str(r["adjustment"]),
        clinics_assessed=0 if is_missing(assessed) else int(assessed),
        q=_num(r.get("heterogeneity_q")),
        chi2=_num(r.get("chi2_critical")),
        phi=_num(r.get("phi")),
        tau2=_num(r.get("tau2")),
        target=target,
        method=None if is_missing(r.get("method")) else str(r["method"]),
    )


def method_lines(s: GroupSummary | None, kind: Funnel = "crude") -> list[str]:
    """The method and the over-dispersion allowance in words (short lines: a chart's subtitle, the pack)."""
    if s is None:
        return []
    if kind == "crude":
        centre = format_value(s.target, "pct") if s.target is not None else SUPPRESSED
        lines = [f"Arcsine funnel around the registry rate ({centre}); 95 % and 99.8 % limits."]
    else:
        lines = ["O/E by indirect standardisation (diagnosis × pain × age × route); limits around 1."]
    if s.adjustment == "random_effects":
        lines.append("Limits widened for over-dispersion (additive random effects):")
        if None not in (s.tau2, s.phi, s.q, s.chi2):
            lines.append(
                f"τ² = {s.tau2:.4g}, φ = {s.phi:.2f}; Cochran Q = {s.q:.1f} > {s.chi2:.1f} ({s.clinics_assessed} clinics)."
            )
    elif s.adjustment == "none":
        lines.append("No over-dispersion found: limits not widened.")
        if None not in (s.q, s.chi2, s.phi):
            lines.append(
                f"Cochran Q = {s.q:.1f} ≤ {s.chi2:.1f} ({s.clinics_assessed} clinics); φ = {s.phi:.2f}."
            )
    else:
        plural = "s" if s.clinics_assessed != 1 else ""
        lines.append(f"Over-dispersion not assessed: {s.clinics_assessed} clinic{plural} plotted, 3 needed.")
        lines.append("Limits not widened.")
    return lines


def plotted(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows drawn on a funnel: plotted, with every plotted figure shown."""
    if rows is None or rows.empty:
        return rows
    keep = [bool(r.get("plotted")) and not is_missing(r.get("plotted")) for r in rows.to_dict("records")]
    return rows[keep]


def not_plotted(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(clinic, why in words) for every clinic of the group that is not on the funnel, in clinic order."""
    if rows is None or rows.empty:
        return []
    out = []
    for r in rows.to_dict("records"):
        if bool(r.get("plotted")) and not is_missing(r.get("plotted")):
            continue
        reason = r.get("not_plotted_reason")
        text = NOT_PLOTTED_REASONS.get(str(reason), "not shown") if not is_missing(reason) else "not shown"
        out.append((str(r["clinic"]), text))
    return sorted(out)


@dataclass(frozen=True)
class Banner:
    kind: Literal["success", "info"]  # never a success unless every clinic was assessed and is within
    text: str


def banner(rows_by_metric: dict[str, pd.DataFrame]) -> Banner:
    """The one line above the outlier table (crude funnels). "Every clinic is within its limits" only when
    every clinic of every measure is plotted and within; otherwise it says how many were assessed."""
    total = assessed = outside = 0
    for rows in rows_by_metric.values():
        if rows is None or rows.empty:
            continue
        total += len(rows)
        on = plotted(rows)
        assessed += len(on)
        outside += int((on["direction"].isin(["high", "low"])).sum())
    if total == 0:
        return Banner("info", "No clinic has a row for this period and cohort.")
    missing = total - assessed
    unassessed = (
        f" {missing} of {total} could not be assessed (their rates are hidden: see 'Not plotted'); "
        "nothing is said about them."
        if missing
        else ""
    )
    if assessed == 0:
        return Banner(
            "info",
            "No clinic could be assessed for this period and cohort: every clinic's rate is hidden "
            "(see 'Not plotted'). This says nothing about whether they are within their limits.",
        )
    if outside:
        return Banner(
            "info",
            f"On the crude funnels, {outside} of {assessed} assessed clinic-measures are outside their 95 % "
            f"limits.{unassessed}",
        )
    if not missing:
        return Banner("success", "Every clinic is within its 95 % limits for every measure of this period.")
    return Banner(
        "info", f"The {assessed} assessed clinic-measures are within their 95 % limits.{unassessed}"
    )


def outliers(funnel: pd.DataFrame, casemix: pd.DataFrame | None = None) -> pd.DataFrame:
    """Clinics beyond their 95 % limits on the crude or the O/E funnel of any measure, as display text:
    direction (and whether that is better or worse), the z-score after the allowance, the limit crossed."""
    rows = []
    for kind, frame in (("crude", funnel), ("case-mix O/E", casemix)):
        if frame is None or frame.empty:
            continue
        for r in plotted(frame).to_dict("records"):
            if r.get("direction") not in ("high", "low"):
                continue
            value_col, kind_fmt = ("rate", "pct") if kind == "crude" else ("oe_ratio", "num2")
            better = r.get("higher_is_better", True)
            rows.append(
                {
                    "Clinic": str(r["clinic"]),
                    "Measure": metric_label(str(r["metric"])),
                    "Funnel": kind,
                    "Direction": direction_text(r.get("direction"), better),
                    "Value": format_value(r.get(value_col), kind_fmt),
                    "z-score": format_value(r.get("z_adjusted"), "num2"),
                    "Limit crossed": LIMIT_CROSSED.get(
                        str(r.get("limit_crossed")), str(r.get("limit_crossed"))
                    ),
                    "95 % limits": _limits(r, "limit_95_low", "limit_95_high", kind_fmt),
                    "99.8 % limits": _limits(r, "limit_998_low", "limit_998_high", kind_fmt),
                    "_order": (0 if r.get("limit_crossed") == "alarm_99_8" else 1, str(r["metric"]), kind),
                }
            )
    if not rows:
        return pd.DataFrame(columns=["Clinic", "Measure", "Funnel", "Direction", "Value", "z-score",
                                     "Limit crossed", "95 % limits", "99.8 % limits"])  # fmt: skip
    out = pd.DataFrame(rows).sort_values(["_order", "Clinic"]).drop(columns="_order")
    return out.reset_index(drop=True)


def _limits(r: dict[str, Any], low: str, high: str, kind: str) -> str:
    if hidden(r, low) or hidden(r, high):
        return SUPPRESSED
    if kind == "pct":
        return f"{format_value(r.get(low), 'pct')} – {format_value(r.get(high), 'pct')}"
    return f"{format_value(r.get(low), 'num2')} – {format_value(r.get(high), 'num2')}"


def position(row: dict[str, Any] | None, kind: Funnel = "crude") -> str:
    """One clinic's place on a funnel, as a clause (the monthly pack's "funnel position")."""
    if row is None:
        return "no row for this clinic"
    if not (bool(row.get("plotted")) and not is_missing(row.get("plotted"))):
        reason = row.get("not_plotted_reason")
        why = NOT_PLOTTED_REASONS.get(str(reason), "not shown") if not is_missing(reason) else "not shown"
        return f"not plotted ({why})"
    value = (
        format_value(row.get("rate"), "pct") if kind == "crude" else format_value(row.get("oe_ratio"), "num2")
    )
    where = direction_text(row.get("direction"), row.get("higher_is_better", True))
    crossed = LIMIT_CROSSED.get(str(row.get("limit_crossed")), "none")
    z = format_value(row.get("z_adjusted"), "num2")
    if where == "within":
        return f"{value}, within the 95 % limits (z = {z})"
    return f"{value}, {where}, beyond the {crossed} limit (z = {z})"


CUSUM_DIRECTIONS = {"deterioration": "deterioration (odds ×2)", "improvement": "improvement (odds ×½)"}


def cusum_status_table(status: pd.DataFrame) -> pd.DataFrame:
    """mart_clinic_cusum_status as display text: signalled, above the threshold now, when; or why not shown."""
    if status is None or status.empty:
        return pd.DataFrame(
            columns=["Clinic", "Measure", "Chart", "Signalled", "Above threshold now", "Last signal"]
        )
    rows = []
    for r in status.sort_values(["clinic", "metric", "direction"]).to_dict("records"):
        shown = bool(r.get("status_shown")) and not is_missing(r.get("status_shown"))
        if not shown:
            signalled = above = last = "not shown (rate hidden)"
        else:
            signalled = "yes" if r.get("signalled") else "no"
            above = "yes" if r.get("above_threshold_now") else "no"
            period = r.get("last_signal_period_type")
            if is_missing(period) or not r.get("signalled"):
                last = "–"
            elif period == "not_shown":
                last = "period not shown (rate hidden)"
            else:
                last = str(r.get("last_signal_period_label"))
        rows.append({"Clinic": str(r["clinic"]), "Measure": metric_label(str(r["metric"])),
                     "Chart": CUSUM_DIRECTIONS.get(str(r["direction"]), str(r["direction"])),
                     "Signalled": signalled, "Above threshold now": above, "Last signal": last})  # fmt: skip
    return pd.DataFrame(rows)

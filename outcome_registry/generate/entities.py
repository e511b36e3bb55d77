"""The generator's entities: patients, sessions, pain scores, adverse events and diaries as numpy arrays.

Each function draws one table's rows for every clinic and month at once (vectorised numpy), and places
each row in the batch of the month it happened (``_place``): a patient in the month of enrolment, a
session and its pre/post scores and adverse events in the session's month, a follow-up score or diary in
its own month but never before its patient's batch, so every reference points at the same or an
earlier batch of that clinic.

The clinical shape follows the published ketamine-for-headache series: mean pre-infusion NRS about 7,
about three quarters of courses with a drop of ≥ 2 points; outpatient IV induction series of 3–6
sessions over about two weeks, boosters after more than 28 days; multi-day inpatient continuous
infusions; intranasal courses; mostly mild adverse events. Vocabularies come from ``contract``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from outcome_registry import contract

# Average sessions per patient over a 24-month window; used to derive patients from a session target.
SESSIONS_PER_PATIENT = 5.45
SMALL_CLINIC_PATIENTS = 8
G43E_FIRST_DAY = np.datetime64("2023-10-01")

# How often each contract value is drawn (tests/test_contract_parity.py: the keys are the contract's).
EVENT_TYPE_WEIGHTS: dict[str, float] = {
    "sedation": 0.20,
    "visual_disturbance": 0.15,
    "nausea": 0.15,
    "hallucinations": 0.12,
    "dissociation": 0.14,
    "dizziness": 0.07,
    "vomiting": 0.04,
    "anxiety": 0.04,
    "hypertension": 0.03,
    "tachycardia": 0.02,
    "headache_worsening": 0.02,
    "other": 0.02,
}
STOP_REASON_WEIGHTS: dict[str, float] = {
    "adverse_event": 0.45,
    "patient_request": 0.2,
    "equipment": 0.1,
    "clinical_decision": 0.15,
    "other": 0.1,
}
SEX_WEIGHTS: dict[str, float] = {"F": 0.75, "M": 0.23, "X": 0.01, "U": 0.01}
# Treatment modality → route and setting (0 outpatient IV, 1 inpatient IV, 2 intranasal, 3 IM).
MODALITY_ROUTE = ("IV", "IV", "IN", "IM")
MODALITY_SETTING = ("outpatient", "inpatient", "outpatient", "outpatient")
SEVERITIES = contract.SEVERITIES  # drawn by index: mild, moderate, severe
ACTIONS = contract.ACTIONS  # drawn by index: none, rate_reduced, infusion_stopped, medication_given
TIMEPOINTS = contract.TIMEPOINTS  # pre_infusion, post_infusion, followup

EVENT_TYPES = np.array(list(EVENT_TYPE_WEIGHTS))
EVENT_WEIGHTS = np.array(list(EVENT_TYPE_WEIGHTS.values()))
STOP_REASONS = np.array(list(STOP_REASON_WEIGHTS))
STOP_WEIGHTS = np.array(list(STOP_REASON_WEIGHTS.values()))
# Chronic migraine dominates (the ketamine-infusion population); G43.E only from October 2023 on.
DIAG_CODES = np.array(
    [
        "G43.709",
        "G43.719",
        "G43.701",
        "G43.711",
        "G43.E19",
        "G43.E09",
        "G43.109",
        "G43.119",
        "G43.009",
        "G43.019",
        "G43.909",
        "G44.209",
        "G44.229",
        "G44.40",
    ]
)
DIAG_WEIGHTS = np.array([0.25, 0.2, 0.08, 0.07, 0.06, 0.04, 0.06, 0.04, 0.05, 0.03, 0.04, 0.04, 0.02, 0.02])


@dataclass
class _Rows:
    """One table's rows: contract columns (numpy/pyarrow arrays) and the batch index of each row."""

    columns: dict[str, Any]
    batch: np.ndarray


def _scrambled_ids(prefix: str, clinic: np.ndarray, index: np.ndarray) -> pa.Array:
    """Ids like ``S003x9f3a02c1``: prefix, clinic number, 'x', 8 hex digits of a bijective scramble.

    Letters up front and no separators, so no id looks like a phone number, SSN or MRN to the privacy
    guard. Built as a byte matrix rather than per-row string formatting, for speed.
    """
    n = len(index)
    v = (index.astype(np.uint64) * np.uint64(2654435761) + np.uint64(0x9E3779B9)) % np.uint64(2**32)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    width = len(prefix) + 3 + 1 + 8
    m = np.empty((n, width), dtype=np.uint8)
    m[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    c = clinic.astype(np.int64) + 1
    p = len(prefix)
    m[:, p] = 48 + (c // 100) % 10
    m[:, p + 1] = 48 + (c // 10) % 10
    m[:, p + 2] = 48 + c % 10
    m[:, p + 3] = ord("x")
    for k in range(8):
        m[:, p + 4 + k] = hexdigits[((v >> np.uint64(4 * (7 - k))) & np.uint64(15)).astype(np.intp)]
    return pa.array(m.reshape(-1).view(f"S{width}")).cast(pa.string())


def _group_cumsum(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each row where group_start is True."""
    cs = np.cumsum(values)
    starts = np.flatnonzero(group_start)
    offset = cs[starts] - values[starts]
    group = np.cumsum(group_start) - 1
    return cs - offset[group]


def _group_rank(group_start: np.ndarray) -> np.ndarray:
    """0-based position of each row within its group."""
    idx = np.arange(len(group_start))
    starts = np.flatnonzero(group_start)
    group = np.cumsum(group_start) - 1
    return idx - starts[group]


def _month_index(days: np.ndarray, start: np.datetime64) -> np.ndarray:
    dates = start + days.astype("timedelta64[D]")
    return (dates.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int64)


@dataclass
class _Patients:
    n: int
    clinic: np.ndarray
    enrol_day: np.ndarray
    batch_month: np.ndarray
    weight: np.ndarray
    pain: np.ndarray  # a patient's typical pre-infusion NRS
    modality: np.ndarray  # 0 outpatient IV, 1 inpatient IV, 2 intranasal, 3 IM
    baseline_mmd: np.ndarray
    diarist: np.ndarray
    ids: pa.Array
    rows: _Rows


def patients_of(
    rng: np.random.Generator,
    n: int,
    clinics: int,
    small: int | None,
    n_days: int,
    start_day: np.datetime64,
    clinic_ids: np.ndarray,
    months: int,
    tiny: np.ndarray | None = None,
) -> _Patients:
    """``n`` patients over ``clinics`` clinics, plus clinics ``clinics``, ``clinics + 1``, … of ``tiny[i]`` each."""
    weights = rng.uniform(0.6, 1.6, clinics)
    counts = np.zeros(clinics + (0 if tiny is None else len(tiny)), dtype=np.int64)
    rest = n
    if tiny is not None:
        counts[clinics:] = tiny
        rest -= int(tiny.sum())
        if rest < clinics:
            raise ValueError("too few patients for the tiny clinics asked for")
    if small is not None and rest >= SMALL_CLINIC_PATIENTS + 11 * (clinics - 1):
        counts[small] = SMALL_CLINIC_PATIENTS
        rest -= SMALL_CLINIC_PATIENTS
        weights[small] = 0.0
    counts[:clinics] += rng.multinomial(rest, weights / weights.sum())
    clinic = np.repeat(np.arange(len(counts)), counts)
    enrol_day = rng.integers(0, max(n_days - 21, 1), n)
    enrol_dates = start_day + enrol_day.astype("timedelta64[D]")
    enrol_year = enrol_dates.astype("datetime64[Y]").astype(int) + 1970
    age = np.clip(rng.normal(43, 12, n), 18, 84).astype(int)
    sex = rng.choice(np.array(list(SEX_WEIGHTS)), n, p=list(SEX_WEIGHTS.values()))
    code = rng.choice(DIAG_CODES, n, p=DIAG_WEIGHTS / DIAG_WEIGHTS.sum())
    # G43.E* did not exist before 2023-10-01: such patients get the older chronic-migraine code.
    is_e = np.char.startswith(code.astype(str), "G43.E") & (enrol_dates < G43E_FIRST_DAY)
    code = np.where(is_e, "G43.709", code)
    undotted = rng.random(n) < 0.3
    code = np.where(undotted, np.char.replace(code.astype(str), ".", ""), code)
    headache = rng.integers(8, 29, n)
    migraine = np.floor(headache * rng.uniform(0.5, 0.95, n)).astype(np.int64)
    hd_null = rng.random(n) < 0.1
    ppf = np.clip(rng.poisson(3.2, n), 0, 30)
    ppf_null = rng.random(n) < 0.15
    modality = rng.choice(4, n, p=[0.65, 0.17, 0.13, 0.05])
    ids = _scrambled_ids("P", clinic, np.arange(n))
    batch_month = _month_index(enrol_day, start_day)
    rows = _Rows(
        {
            "patient_id": ids,
            "clinic_id": pa.array(clinic_ids[clinic]),
            "birth_year": pa.array(enrol_year - age),
            "sex": pa.array(sex),
            "diagnosis_code": pa.array(code.astype(str)),
            "baseline_headache_days": pa.array(headache, mask=hd_null),
            "baseline_migraine_days": pa.array(migraine, mask=hd_null),
            "prior_preventive_failures": pa.array(ppf, mask=ppf_null),
            "enrolled_on": pa.array(enrol_dates),
        },
        clinic * months + batch_month,
    )
    return _Patients(
        n=n,
        clinic=clinic,
        enrol_day=enrol_day,
        batch_month=batch_month,
        weight=np.clip(rng.normal(76, 17, n), 42, 160),
        pain=np.clip(rng.normal(7.6, 1.1, n), 4, 10),
        modality=modality,
        baseline_mmd=np.where(hd_null, rng.integers(8, 22, n), migraine),
        diarist=rng.random(n) < 0.45,
        ids=ids,
        rows=rows,
    )


@dataclass
class _Sessions:
    patient: np.ndarray
    course: np.ndarray  # global course index
    day: np.ndarray
    duration: np.ndarray
    ids: pa.Array
    rows: _Rows


def sessions_of(
    rng: np.random.Generator,
    pat: _Patients,
    n_days: int,
    worse: int | None,
    start_day: np.datetime64,
    months: int,
) -> tuple[_Sessions, dict[str, Any]]:
    lam = np.array([1.6, 0.7, 2.0, 1.2])[pat.modality]
    n_courses = 1 + rng.poisson(lam)
    c_pat = np.repeat(np.arange(pat.n), n_courses)
    c_first = np.r_[True, c_pat[1:] != c_pat[:-1]]
    c_rank = _group_rank(c_first)
    c_mod = pat.modality[c_pat]
    nc = len(c_pat)
    induction = np.select(
        [c_mod == 0, c_mod == 1, c_mod == 2],
        [rng.integers(3, 7, nc), 1, rng.integers(2, 7, nc)],
        rng.integers(3, 6, nc),
    )
    booster = np.select([c_mod == 1, c_mod == 2], [1, rng.integers(1, 4, nc)], rng.integers(1, 3, nc))
    c_len = np.where(c_rank == 0, induction, booster)
    # Course outcome: responders drop ≥ 3 points (so ≥ 2 for sure), others move -1..+1.
    p_resp = np.where(pat.clinic[c_pat] == worse, 0.42, 0.76) * np.array([1.0, 1.03, 0.93, 0.95])[c_mod]
    resp = rng.random(nc) < p_resp
    base = np.clip(np.rint(pat.pain[c_pat] + rng.normal(0, 0.6, nc)), 3, 10)
    drop = np.where(resp, np.minimum(rng.integers(3, 7, nc), base), rng.integers(-1, 2, nc))

    s_course = np.repeat(np.arange(nc), c_len)
    s_pat = c_pat[s_course]
    s_first_in_course = np.r_[True, s_course[1:] != s_course[:-1]]
    s_first_of_pat = np.r_[True, s_pat[1:] != s_pat[:-1]]
    ns = len(s_course)
    mod = pat.modality[s_pat]
    within = np.select([mod == 2], [rng.integers(1, 8, ns)], rng.integers(2, 5, ns))
    delta = np.where(
        s_first_of_pat,
        rng.integers(0, 15, ns),
        np.where(s_first_in_course, rng.integers(33, 181, ns), within),
    )
    day = pat.enrol_day[s_pat] + _group_cumsum(delta, s_first_of_pat)
    keep = day < n_days
    s_course, s_pat, day, mod = s_course[keep], s_pat[keep], day[keep], mod[keep]
    ns = len(day)
    k = _group_rank(np.r_[True, s_course[1:] != s_course[:-1]])
    n_in_course = np.bincount(s_course, minlength=nc)[s_course]

    weight = pat.weight[s_pat] + rng.normal(0, 1.0, ns)
    mgkg = rng.uniform(0.4, 1.0, ns)
    dur = np.select(
        [mod == 0, mod == 1, mod == 2],
        [rng.integers(40, 121, ns), rng.integers(3 * 1440, 5 * 1440 + 1, ns), rng.integers(15, 46, ns)],
        rng.integers(30, 61, ns),
    )
    fast = (mod == 0) & (rng.random(ns) < 0.01)  # a few IV pushes above 2 mg/kg/h (plausibility flag)
    dur = np.where(fast, rng.integers(10, 20, ns), dur)
    rate_h = rng.uniform(0.1, 0.6, ns)
    dose = np.select(
        [mod == 0, mod == 1, mod == 2],
        [weight * mgkg, weight * rate_h * dur / 60.0, rng.choice(np.array([25.0, 50, 75, 100]), ns)],
        weight * rng.uniform(0.25, 0.5, ns),
    )
    dose = np.round(dose, 1)
    w_null = rng.random(ns) < np.where(mod == 2, 0.3, 0.03)
    completed = rng.random(ns) >= 0.04
    stop = rng.choice(STOP_REASONS, ns, p=STOP_WEIGHTS)
    ids = _scrambled_ids("S", pat.clinic[s_pat], np.arange(ns))
    rows = _Rows(
        {
            "session_id": ids,
            "patient_id": pat.ids.take(pa.array(s_pat)),
            "session_date": pa.array(start_day + day.astype("timedelta64[D]")),
            "route": pa.array(np.array(MODALITY_ROUTE)[mod]),
            "setting": pa.array(np.array(MODALITY_SETTING)[mod]),
            "dose_mg": pa.array(dose),
            "weight_kg": pa.array(np.round(weight, 1), mask=w_null),
            "duration_min": pa.array(dur),
            "completed": pa.array(completed),
            "stop_reason": pa.array(stop, mask=completed),
        },
        np.zeros(ns, dtype=np.int64),
    )
    _place(rows, pat, s_pat, day, start_day, months)
    sess = _Sessions(patient=s_pat, course=s_course, day=day, duration=dur, ids=ids, rows=rows)
    courses = {
        "n": int(np.unique(s_course).size),
        "base": base,
        "drop": drop,
        "resp": resp,
        "k": k,
        "len": n_in_course,
        "patient": c_pat,
    }
    return sess, courses


def _place(
    rows: _Rows, pat: _Patients, patient: np.ndarray, day: np.ndarray, start_day: np.datetime64, months: int
) -> None:
    """Set each row's batch: its own month, never before its patient's batch."""
    month = np.maximum(_month_index(day, start_day), pat.batch_month[patient])
    rows.batch = pat.clinic[patient] * months + month


def pain_scores(
    rng: np.random.Generator,
    pat: _Patients,
    ses: _Sessions,
    crs: dict[str, Any],
    n_days: int,
    start_day: np.datetime64,
    months: int,
) -> _Rows:
    ns = len(ses.day)
    c = ses.course
    base, drop, k, n = crs["base"][c], crs["drop"][c], crs["k"], crs["len"]
    pre = np.where(k == 0, base, np.rint(base - drop * (k / n) * 0.6 + rng.normal(0, 0.5, ns)))
    post = np.where(k == n - 1, base - drop, np.rint(base - drop * (k + 1) / n + rng.normal(0, 0.5, ns)))
    pre, post = np.clip(pre, 0, 10), np.clip(post, 0, 10)
    pre_t = ses.day * 1440 + rng.integers(7 * 60, 11 * 60, ns)
    post_t = pre_t + ses.duration + rng.integers(10, 41, ns)
    swapped = rng.random(ns) < 0.001  # rare post-before-pre timestamps (plausibility flag)
    post_t = np.where(swapped, pre_t - 30, post_t)
    has_pre = rng.random(ns) >= 0.03
    has_post = rng.random(ns) >= 0.05

    # Follow-up scores ~7/28/84 days after each course's last session, completion falling.
    last = np.r_[c[1:] != c[:-1], True]
    lc, lday, lpat = c[last], ses.day[last], ses.patient[last]
    f_parts = []
    for target, jitter, p, retain in ((7, 2, 0.75, 0.9), (28, 5, 0.55, 0.7), (84, 10, 0.35, 0.45)):
        take = rng.random(len(lc)) < p
        fday = lday + target + rng.integers(-jitter, jitter + 1, len(lc))
        take &= fday < n_days
        val = np.clip(
            np.rint(crs["base"][lc] - crs["drop"][lc] * retain + rng.normal(0, 0.8, len(lc))), 0, 10
        )
        f_parts.append((lpat[take], fday[take], val[take]))
    f_pat = np.concatenate([f[0] for f in f_parts])
    f_day = np.concatenate([f[1] for f in f_parts])
    f_val = np.concatenate([f[2] for f in f_parts])

    s_idx = np.arange(ns)
    pre_i, post_i = s_idx[has_pre], s_idx[has_post]
    patient = np.concatenate([ses.patient[pre_i], ses.patient[post_i], f_pat])
    minutes = np.concatenate(
        [pre_t[pre_i], post_t[post_i], f_day * 1440 + rng.integers(8 * 60, 20 * 60, len(f_day))]
    )
    nrs = np.concatenate([pre[pre_i], post[post_i], f_val])
    timepoint = np.concatenate([np.full(len(pre_i), 0), np.full(len(post_i), 1), np.full(len(f_day), 2)])
    sess_of = np.concatenate([pre_i, post_i, np.full(len(f_day), -1)])
    # Interleave pre and post of a session, as an EHR extract would list them.
    order = np.lexsort((timepoint, np.where(sess_of >= 0, sess_of, ns + np.arange(len(sess_of)))))
    patient, minutes, nrs, timepoint, sess_of = (
        a[order] for a in (patient, minutes, nrs, timepoint, sess_of)
    )
    m = len(patient)
    has_s = sess_of >= 0
    session_col = ses.ids.take(pa.array(np.where(has_s, sess_of, 0)))
    session_col = pc.if_else(pa.array(has_s), session_col, pa.scalar(None, pa.string()))
    rows = _Rows(
        {
            "score_id": _scrambled_ids("N", pat.clinic[patient], np.arange(m)),
            "patient_id": pat.ids.take(pa.array(patient)),
            "session_id": session_col,
            "assessed_at": pa.array(
                (np.datetime64(start_day, "m") + minutes.astype("timedelta64[m]")).astype("datetime64[s]")
            ),
            "timepoint": pa.array(np.array(TIMEPOINTS)[timepoint]),
            "pain_nrs": pa.array(nrs.astype(np.float64)),
        },
        np.zeros(m, dtype=np.int64),
    )
    # Pre/post go with their session's batch; follow-ups in their own month.
    own = np.where(has_s, ses.rows.batch[np.where(has_s, sess_of, 0)], 0)
    _place(rows, pat, patient, minutes // 1440, start_day, months)
    rows.batch = np.where(has_s, own, rows.batch)
    return rows


def adverse_events(rng: np.random.Generator, pat: _Patients, ses: _Sessions) -> _Rows:
    ns = len(ses.day)
    mod = pat.modality[ses.patient]
    count = rng.poisson(np.array([0.25, 0.8, 0.15, 0.2])[mod])
    s = np.repeat(np.arange(ns), count)
    m = len(s)
    sev = rng.choice(3, m, p=[0.78, 0.18, 0.04])
    serious = np.where(sev == 2, rng.random(m) < 0.4, (sev == 1) & (rng.random(m) < 0.02))
    actions = np.array(ACTIONS)
    u = rng.random(m)
    action = np.select(
        [sev == 0, sev == 1],
        [np.select([u < 0.8, u < 0.95], [0, 1], 3), np.select([u < 0.1, u < 0.5, u < 0.9], [0, 1, 3], 2)],
        np.where(u < 0.6, 2, 3),
    )
    return _Rows(
        {
            "event_id": _scrambled_ids("E", pat.clinic[ses.patient[s]], np.arange(m)),
            "session_id": ses.ids.take(pa.array(s)),
            "event_type": pa.array(rng.choice(EVENT_TYPES, m, p=EVENT_WEIGHTS / EVENT_WEIGHTS.sum())),
            "severity": pa.array(np.array(SEVERITIES)[sev]),
            "serious": pa.array(serious),
            "action": pa.array(actions[action]),
        },
        ses.rows.batch[s],
    )


def diary(
    rng: np.random.Generator,
    pat: _Patients,
    ses: _Sessions,
    crs: dict[str, Any],
    n_days: int,
    start_day: np.datetime64,
    months: int,
) -> _Rows:
    first = np.r_[True, ses.patient[1:] != ses.patient[:-1]]
    fp, fday = ses.patient[first], ses.day[first]
    keep = pat.diarist[fp]
    b_pat, b_day = fp[keep], fday[keep] - rng.integers(0, 11, keep.sum())
    b_mmd = pat.baseline_mmd[b_pat] + rng.integers(-2, 3, len(b_pat))
    last = np.r_[ses.course[1:] != ses.course[:-1], True]
    lc, lday, lpat = ses.course[last], ses.day[last], ses.patient[last]
    parts = [(b_pat, b_day, b_mmd, np.zeros(len(b_pat), dtype=bool))]
    for offset, p in ((28, 0.8), (56, 0.6)):
        take = pat.diarist[lpat] & (rng.random(len(lc)) < p)
        d = lday + offset + rng.integers(0, 8, len(lc))
        take &= d < n_days
        red = np.where(crs["resp"][lc], rng.uniform(0.3, 0.7, len(lc)), rng.uniform(-0.1, 0.2, len(lc)))
        mmd = np.rint(pat.baseline_mmd[lpat] * (1 - red))
        parts.append((lpat[take], d[take], mmd[take], crs["resp"][lc][take]))
    patient = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    mmd = np.clip(np.concatenate([p[2] for p in parts]), 0, 28).astype(np.int64)
    better = np.concatenate([p[3] for p in parts])
    order = np.lexsort((day, patient))
    patient, day, mmd, better = patient[order], day[order], mmd[order], better[order]
    m = len(patient)
    headache = np.minimum(mmd + rng.integers(0, 6, m), 28)
    midas = np.clip(np.rint(rng.normal(60, 30, m) * np.where(better, 0.5, 1.0)), 0, 270).astype(np.int64)
    hit6 = np.clip(np.rint(rng.normal(64, 5, m) - np.where(better, rng.uniform(3, 8, m), 0)), 36, 78)
    rows = _Rows(
        {
            "diary_id": _scrambled_ids("D", pat.clinic[patient], np.arange(m)),
            "patient_id": pat.ids.take(pa.array(patient)),
            "period_end": pa.array(start_day + day.astype("timedelta64[D]")),
            "headache_days": pa.array(headache),
            "migraine_days": pa.array(mmd),
            "midas_score": pa.array(midas, mask=rng.random(m) < 0.2),
            "hit6_score": pa.array(hit6.astype(np.int64), mask=rng.random(m) < 0.2),
        },
        np.zeros(m, dtype=np.int64),
    )
    _place(rows, pat, patient, day, start_day, months)
    return rows

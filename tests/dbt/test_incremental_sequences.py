"""Patient-scoped incremental builds equal full rebuilds, on hypothesis-generated sequences of batches.

Each example starts from a small generated registry (two clinics, two monthly batches each, built in full),
then applies a sequence of changes, the way they reach the store:

* a new month: a clinic's next batch, with new patients and further sessions of its earlier patients (so
  courses grow or start), pre/post scores, follow-ups, diaries and adverse events;
* a resubmission: an earlier batch replaced by a new version (ingest deletes the old rows and loads the new
  ones under a new load) that drops sessions, changes pain scores and dates, and moves a session to another
  patient (its scores keep naming the first patient: they count for both);
* a late, older extract: a batch extracted before the one it overlaps, re-sending keys with other values (it
  must lose to the newer versions) and carrying a few new rows;
* a withdrawal (``outcome_registry.withdraw``): one patient's rows out of every batch.

After every change the same store is built incrementally on top of the previous working copy and with
``--full-refresh`` in a second home; every table of schema ``marts`` (what publish publishes: figures,
flags, row counts) and the outcome cube must be equal. ``INCREMENTAL_EXAMPLES`` (default 2) sets how many
sequences hypothesis tries.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_registry_data import Batch, _empty, assert_built, create_registry, delete_batch, load_batch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcome_registry.dbt_runner import build
from outcome_registry.paths import RegistryHome
from outcome_registry.withdraw import withdraw

pytestmark = pytest.mark.slow

D = dt.date
EXAMPLES = int(os.environ.get("INCREMENTAL_EXAMPLES", "2"))
CLINICS = ("CLN-E", "CLN-F")
ROUTES = ("IV", "IM", "IN")
EVENTS = ("nausea", "dizziness", "dissociation")
# Extra tables compared beside schema marts: the cube every aggregate mart projects.
EXTRA_TABLES = ("intermediate.int_outcome_cube", "intermediate.int_outcome_cube_event_types")


class Registry:
    """The batches loaded so far (their current versions), and how to make new ones."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.batches: dict[str, Batch] = {}
        self.load_seq = 0
        self.patients: dict[str, list[str]] = {c: [] for c in CLINICS}
        self.months: dict[str, int] = {c: 0 for c in CLINICS}
        self.serial = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:05d}"

    def next_month(self, clinic: str) -> Batch:
        """The clinic's next monthly batch: new patients and more sessions of earlier ones."""
        rng = self.rng
        self.months[clinic] += 1
        month = self.months[clinic]
        rows = _empty()
        first_day = D(2024, month, 1)
        new = [self._id(f"{clinic[-1]}P") for _ in range(rng.randint(1, 4))]
        for pid in new:
            birth = rng.choice([1950, 1972, 1990, None])
            rows["patients"].append(
                (pid, clinic, birth, rng.choice("FM"), rng.choice(["G43.709", "G43009", "G44.209"]),
                 14, rng.choice([0, 6, 12, None]), 2, first_day)
            )  # fmt: skip
        returning = rng.sample(self.patients[clinic], k=min(len(self.patients[clinic]), rng.randint(0, 3)))
        self.patients[clinic] += new
        for pid in new + returning:
            for _ in range(rng.randint(1, 2)):
                day = first_day + dt.timedelta(days=rng.randint(0, 27))
                sid = self._id("S")
                rows["infusion_sessions"].append(
                    (sid, pid, day, rng.choice(ROUTES), rng.choice(["outpatient", "inpatient"]),
                     rng.choice([35.0, 70.0, 140.0]), rng.choice([70.0, None]), 60, True, None)
                )  # fmt: skip
                at = dt.datetime.combine(day, dt.time(8))
                rows["pain_scores"].append(
                    (self._id("C"), pid, sid, at, "pre_infusion", float(rng.randint(4, 9)))
                )
                if rng.random() < 0.8:
                    post = float(rng.randint(0, 8))
                    rows["pain_scores"].append(
                        (self._id("C"), pid, sid, at.replace(hour=12), "post_infusion", post)
                    )
                if rng.random() < 0.3:
                    rows["adverse_events"].append(
                        (self._id("E"), sid, rng.choice(EVENTS), "mild", rng.random() < 0.3, "none")
                    )
                if rng.random() < 0.4:
                    later = at + dt.timedelta(days=rng.choice([6, 7, 27, 30, 84]))
                    rows["pain_scores"].append(
                        (self._id("C"), pid, None, later, "followup", float(rng.randint(1, 7)))
                    )
                if rng.random() < 0.3:
                    end = day + dt.timedelta(days=rng.choice([-3, 35, 60]))
                    rows["headache_diary"].append(
                        (self._id("D"), pid, end, 10, rng.randint(2, 9), None, None)
                    )
        return Batch(f"{clinic}-2024-{month:02d}", clinic, dt.datetime.combine(first_day, dt.time(9)) +
                     dt.timedelta(days=30), rows)  # fmt: skip

    def resubmission(self) -> Batch:
        """A new version of an earlier batch: some sessions gone, scores and dates changed, a session moved."""
        rng = self.rng
        old = self.batches[rng.choice(sorted(self.batches))]
        rows = {t: list(r) for t, r in old.rows.items()}
        sessions = rows["infusion_sessions"]
        if len(sessions) > 1:
            gone = {s[0] for s in rng.sample(sessions, k=max(1, len(sessions) // 3))}
            rows["infusion_sessions"] = [s for s in sessions if s[0] not in gone]
            rows["pain_scores"] = [c for c in rows["pain_scores"] if c[2] not in gone]
            rows["adverse_events"] = [e for e in rows["adverse_events"] if e[1] not in gone]
        rows["pain_scores"] = [
            (*c[:5], min(10.0, c[5] + 2)) if rng.random() < 0.5 else c for c in rows["pain_scores"]
        ]
        rows["infusion_sessions"] = [
            (s[0], s[1], s[2] + dt.timedelta(days=rng.choice([-2, 3])), *s[3:]) if rng.random() < 0.3 else s
            for s in rows["infusion_sessions"]
        ]
        patients = [p[0] for p in rows["patients"]]
        if rows["infusion_sessions"] and len(patients) > 1:
            i = rng.randrange(len(rows["infusion_sessions"]))
            s = rows["infusion_sessions"][i]
            rows["infusion_sessions"][i] = (
                s[0],
                rng.choice([p for p in patients if p != s[1]] or [s[1]]),
                *s[2:],
            )
        return Batch(old.batch_id, old.clinic_id, old.extracted_at + dt.timedelta(hours=1), rows)

    def late_older_extract(self) -> Batch:
        """An extract older than the batch it overlaps: its versions lose; its new rows count."""
        rng = self.rng
        newer = self.batches[rng.choice(sorted(self.batches))]
        rows = _empty()
        for c in newer.rows["pain_scores"][:3]:
            rows["pain_scores"].append((*c[:5], 10.0))
        for s in newer.rows["infusion_sessions"][:1]:
            rows["infusion_sessions"].append((s[0], s[1], s[2] + dt.timedelta(days=40), *s[3:]))
            extra = self._id("S")
            rows["infusion_sessions"].append((extra, s[1], s[2] + dt.timedelta(days=2), *s[3:]))
        return Batch(
            f"{newer.batch_id}-late", newer.clinic_id, newer.extracted_at - dt.timedelta(days=3), rows
        )

    def load(self, home: RegistryHome, batch: Batch) -> None:
        if batch.batch_id in self.batches:
            delete_batch(home, batch.batch_id)
        self.load_seq += 1
        load_batch(home, batch, self.load_seq)
        self.batches[batch.batch_id] = batch

    def withdraw_one(self, home: RegistryHome) -> None:
        patients = [p for ps in self.patients.values() for p in ps]
        pid = self.rng.choice(patients)
        withdraw(home, pid, reason="test", requested_by="test", compact=False)
        for ps in self.patients.values():
            if pid in ps:
                ps.remove(pid)
        for b in self.batches.values():  # keep the in-memory copies in step with the store
            sessions = {s[0] for s in b.rows["infusion_sessions"] if s[1] == pid}
            b.rows["patients"] = [p for p in b.rows["patients"] if p[0] != pid]
            b.rows["infusion_sessions"] = [s for s in b.rows["infusion_sessions"] if s[1] != pid]
            b.rows["pain_scores"] = [c for c in b.rows["pain_scores"] if c[1] != pid]
            b.rows["headache_diary"] = [d for d in b.rows["headache_diary"] if d[1] != pid]
            b.rows["adverse_events"] = [e for e in b.rows["adverse_events"] if e[1] not in sessions]


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every marts table and the cube, rows sorted, floats rounded (thread order may move the last bits)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            f"marts.{r[0]}"
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        out = {}
        for t in [*tables, *EXTRA_TABLES]:
            rows = con.execute(f"select * from {t}").fetchall()
            out[t] = sorted(
                (tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows), key=repr
            )
        return out
    finally:
        con.close()


def assert_same(incremental: RegistryHome, full: RegistryHome, step: str) -> None:
    got, expected = snapshot(incremental.working_db), snapshot(full.working_db)
    assert got.keys() == expected.keys(), step
    for table, rows in expected.items():
        missing = [r for r in rows if r not in got[table]][:3]
        extra = [r for r in got[table] if r not in rows][:3]
        assert got[table] == rows, f"{step}: {table} differs; missing {missing}; extra {extra}"


OPERATIONS = st.lists(
    st.sampled_from(["month", "month", "resubmission", "late", "withdrawal"]), min_size=2, max_size=3
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(min_value=0, max_value=10_000), operations=OPERATIONS)
def test_incremental_builds_equal_full_refresh(tmp_path: Path, seed: int, operations: list[str]) -> None:
    root = tmp_path / f"case-{seed}-{'-'.join(operations)}"
    inc = RegistryHome.at(root / "incremental")
    create_registry(inc)
    registry = Registry(random.Random(seed))
    for _ in range(2):
        for clinic in CLINICS:
            registry.load(inc, registry.next_month(clinic))
    assert_built(build(inc, full_refresh=True))
    for i, op in enumerate(operations):
        step = f"seed {seed}, step {i + 1} ({op}) of {operations}"
        if op == "month":
            registry.load(inc, registry.next_month(registry.rng.choice(CLINICS)))
        elif op == "resubmission":
            registry.load(inc, registry.resubmission())
        elif op == "late":
            registry.load(inc, registry.late_older_extract())
        else:
            registry.withdraw_one(inc)
        result = build(inc)  # on top of the previous working copy
        assert_built(result)
        assert not result.full_refresh, step
        full = RegistryHome.at(root / f"full-{i}")
        shutil.copy2(inc.registry_db, full.registry_db)
        assert_built(build(full, full_refresh=True))
        assert_same(inc, full, step)
        shutil.rmtree(full.root)

"""One pass (issue 13): all batches of an ingest are checked together, yet the result is exactly that of
loading them one by one in extract order, whatever the chunking; and the work is a fixed number of
statements, not a dozen per batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import query

import outcome_registry.ingest as ing
from outcome_registry.generate import generate
from outcome_registry.manifest import Limits, discover
from outcome_registry.paths import RegistryHome

# Everything a load decides, without the wall-clock columns.
STATE = {
    "raw": " UNION ALL ".join(
        f"SELECT '{t}', {key}, _batch_id, _load_seq, _source_line, md5(t::VARCHAR) FROM raw.{t} t"
        for t, key in (
            ("patients", "patient_id"),
            ("infusion_sessions", "session_id"),
            ("pain_scores", "score_id"),
            ("adverse_events", "event_id"),
            ("headache_diary", "diary_id"),
        )
    ),
    "quarantine": "SELECT batch_id, file_name, line_number, all_rules, raw_row, load_seq FROM meta.quarantine",
    "audit": "SELECT batch_id, file_name, rows_received, rows_loaded, rows_quarantined, load_seq FROM meta.load_audit",
    "batches": "SELECT batch_id, clinic_id, extracted_at, content_sha256, load_seq FROM meta.batches",
}


def state(home: RegistryHome) -> dict[str, list[tuple]]:
    return {name: sorted(query(home, sql), key=repr) for name, sql in STATE.items()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onepass") / "batches"
    generate(out, patients=60, clinics=2, months=4, seed=21, faults=0.08)
    return out


def test_one_pass_equals_one_by_one_at_any_chunk_size(generated: Path, tmp_path: Path) -> None:
    together = RegistryHome.at(tmp_path / "together")
    ing.ingest_paths(together, [generated])
    chunked = RegistryHome.at(tmp_path / "chunked")
    ing.ingest_paths(chunked, [generated], limits=Limits(chunk_bytes=1))  # every batch its own round
    single = RegistryHome.at(tmp_path / "single")
    for path in discover([generated]):
        ing.ingest_batch(single, path)
    expected = state(single)
    assert expected["quarantine"], "the faults should quarantine rows"
    assert state(together) == expected
    assert state(chunked) == expected


def test_the_number_of_statements_does_not_grow_with_the_batches(tmp_path: Path, monkeypatch) -> None:
    counts = []
    real = ing.connect

    class Counting:
        def __init__(self, con) -> None:
            self.con, self.n = con, 0

        def execute(self, *args, **kwargs):
            self.n += 1
            return self.con.execute(*args, **kwargs)

        def executemany(self, *args, **kwargs):
            self.n += 1
            return self.con.executemany(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.con, name)

    opened: list[Counting] = []

    def counting_connect(home: RegistryHome) -> Counting:
        opened.append(Counting(real(home)))
        return opened[-1]

    monkeypatch.setattr(ing, "connect", counting_connect)
    for months in (2, 12):
        out = tmp_path / f"g{months}"
        generate(out, patients=40, clinics=2, months=months, seed=3)
        results = ing.ingest_paths(RegistryHome.at(tmp_path / f"h{months}"), [out])
        assert {r.status for r in results} == {"loaded"} and len(results) == 2 * months
        counts.append(opened[-1].n)
    assert counts[0] == counts[1], counts

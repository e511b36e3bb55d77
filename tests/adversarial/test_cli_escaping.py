"""Text from users and batches printed by the CLI is text: rich markup in it (`[/bad]`, `[link=…]`) prints
as written, and terminal control characters (ESC, bidirectional overrides) never reach the terminal.

The CLI runs as a subprocess with FORCE_COLOR=1, so rich writes terminal sequences as it would to a
real terminal: an interpreted `[link=…]` would show up as an OSC 8 hyperlink (ESC ] 8 ;)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from platform_helpers import cli, make_tiered_home, published_tiered_home, run_sql

from outcome_registry.paths import RegistryHome

BUILD = "20260501T000000000000"
HOSTILE = "[/bad] [link=https://evil.example]click[/link] [bold red]x"
FORCE = {"FORCE_COLOR": "1", "COLUMNS": "200"}
HYPERLINK = "\x1b]8;"


def no_injection(text: str) -> None:
    assert HYPERLINK not in text, repr(text)
    assert "Traceback" not in text and "internal error" not in text and "MarkupError" not in text
    assert "\u202e" not in text  # a right-to-left override from the data never reaches the terminal


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return published_tiered_home(tmp_path_factory.mktemp("escaping") / "home", BUILD)


def test_query_results_and_column_names_print_as_text(home: RegistryHome) -> None:
    query = (
        f"select '{HOSTILE}' as \"[red]col[/red]\", 'a' || chr(27) || ']8;;https://evil.example' || chr(7) "
        "|| 'b' as esc, 'abc' || chr(8238) || 'txt.exe' as bidi"
    )
    out = cli("sql", query, home=home.root, env=FORCE)
    assert out.returncode == 0, out.stderr
    no_injection(out.stdout + out.stderr)
    plain = out.stdout
    assert (
        "[/bad]" in plain and "[link=https://evil.example]click[/link]" in plain and "[red]col[/red]" in plain
    )
    assert "a?]8;;https://evil.example?b" in plain  # ESC and BEL shown as "?"
    assert "abc?txt.exe" in plain


def test_status_prints_build_messages_and_the_home_as_text(tmp_path: Path) -> None:
    home = make_tiered_home(tmp_path / HOSTILE.replace("/", "_"))
    run_sql(
        home.registry_db,
        "INSERT INTO meta.builds (build_id, started_at, finished_at, status, message) VALUES "
        f"('B1', now()::TIMESTAMP, now()::TIMESTAMP, 'failed', '{HOSTILE} ' || chr(27) || '[2J')",
    )
    run_sql(
        home.registry_db,
        "INSERT INTO meta.batches (batch_id, clinic_id) VALUES ('[/bad]', '[link=https://evil.example]c')",
    )
    out = cli("status", home=home.root, env=FORCE)
    assert out.returncode == 0, out.stderr
    no_injection(out.stdout + out.stderr)
    assert "[link=https://evil.example]click[/link]" in out.stdout
    assert "?[2J" in out.stdout  # the clear-screen sequence from the data is defused
    assert "[_bad]" in out.stdout  # the home's own name, as written


def test_a_refused_batch_with_markup_in_its_name_prints_as_text(tmp_path: Path) -> None:
    batch = tmp_path / "[link=https:evil.example]clinic[bold red]"  # a name cannot hold "/"
    batch.mkdir()
    (batch / "manifest.json").write_text(json.dumps({"batch_id": HOSTILE}), encoding="utf-8")
    out = cli("ingest", str(batch), home=tmp_path / "home", env=FORCE)
    assert out.returncode == 3, out.stdout + out.stderr
    no_injection(out.stdout + out.stderr)
    assert "refused" in out.stderr


def test_an_error_message_with_markup_prints_as_text(tmp_path: Path) -> None:
    missing = tmp_path / "[/bad][link=https://evil.example]nope"  # a path that does not exist
    out = cli("ingest", str(missing), home=tmp_path / "h", env=FORCE)
    assert out.returncode == 2
    no_injection(out.stdout + out.stderr)
    assert str(missing) in out.stderr


def test_a_sql_error_with_markup_prints_as_text(home: RegistryHome) -> None:
    out = cli(
        "sql", 'select "[/bad][link=https://evil.example]x" from fct_sessions', home=home.root, env=FORCE
    )
    assert out.returncode == 2
    no_injection(out.stdout + out.stderr)
    assert "Binder Error" in out.stderr and "[" in out.stderr  # quoted back as text (path-like parts hidden)


def test_usage_errors_are_plain_and_exit_2(home: RegistryHome) -> None:
    for args in (("sql", "select 1", "--limit", "[/bad]"), ("[/bad]",), ("sql",)):
        out = cli(*args, home=home.root, env=FORCE)
        assert out.returncode == 2, args
        no_injection(out.stdout + out.stderr)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("build", ["--full-refresh", "--wait", "SECONDS", "Exit codes"]),
        ("run", ["--wait", "--full-refresh", "Exit code 3"]),
        ("sql", ["--limit", "--timeout", "--as-role", "--csv", "logged"]),
        ("status", ["build"]),
    ],
)
def test_help_says_what_each_option_does(command: str, words: list[str]) -> None:
    out = cli(command, "--help", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert out.returncode == 0
    for word in words:
        assert word in out.stdout, (command, word)


def test_the_published_copy_is_queried_read_only(home: RegistryHome) -> None:
    # Nothing the SQL box runs can change the published file (it is attached read-only in a worker).
    before = (home.published_db.stat().st_mtime_ns, home.published_db.stat().st_size)
    out = cli("sql", "select count(*) from fct_sessions", home=home.root)
    assert out.returncode == 0
    assert (home.published_db.stat().st_mtime_ns, home.published_db.stat().st_size) == before
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        assert con.execute("select count(*) from fct_sessions").fetchall() == [(3,)]
    finally:
        con.close()

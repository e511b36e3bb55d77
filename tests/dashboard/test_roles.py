"""Each role on each page of the real app (AppTest), signed in through st.user claims and the home's
config/access.toml: which pages exist for it, what it sees, and what it can never reach (another
clinic's rows or identity through any page, filter or download; row-level or restricted data)."""

from __future__ import annotations

import contextlib

import pytest
from dashboard_helpers import PAGES, USERS, all_text, by_label
from fixture_warehouse import CODES, PATIENT_PREFIX, QUARANTINED_RAW_ROW, REFUSAL_MESSAGE

from outcome_registry import access_log

# Worked out from the page registry's role lists (dashboard/pages.py), by hand.
REACHABLE = {
    "reader": {"monthly", "cohorts", "clinic_quality"},
    "reviewer": {"monthly", "cohorts", "clinic_quality", "clinic_records", "data_quality"},
    "analyst": {"monthly", "cohorts", "clinic_quality", "clinic_records", "sql", "data_quality"},
    "staff": set(PAGES),
}
OTHER_CLINICS = ("CLN-002", "CLN-003")


def _reachable(open_page, home, user) -> set[str]:
    at = open_page(home, "monthly", user)
    reachable = {"monthly"}
    for page in PAGES:
        if page == "monthly":
            continue
        try:
            at.switch_page(PAGES[page])
        except ValueError:  # not registered in st.navigation for this user: no URL at all
            continue
        reachable.add(page)
    return reachable


@pytest.mark.parametrize("user", list(REACHABLE))
def test_navigation_holds_only_the_roles_pages(open_page, signed_home, user):
    assert _reachable(open_page, signed_home, user) == REACHABLE[user]


def _every_view(open_page, home, user) -> str:
    """The text of every page this user can reach, with every clinic choice of every clinic filter."""
    texts = []
    for page in sorted(REACHABLE[user]):
        at = open_page(home, page, user)
        assert not at.exception, (page, [e.value for e in at.exception])
        texts.append(all_text(at))
        clinic_boxes = [w for w in at.selectbox if w.label == "Clinic"]
        for box in clinic_boxes:
            for option in box.options:
                by_label(at.selectbox, "Clinic").set_value(option).run()
                texts.append(all_text(at))
        if page == "clinic_quality":
            by_label(at.selectbox, "Period").set_value("month").run()
            for which in range(len(by_label(at.selectbox, "Which").options)):
                by_label(at.selectbox, "Which").set_value(which).run()
                texts.append(all_text(at))
    return "\n".join(texts)


def _downloads(captured) -> str:
    """The text of every captured download; a monthly pack (made on click) is made here, as HTML."""
    parts = []
    for name, data in captured:
        if callable(data):
            if name.endswith(".html"):
                parts.append(data().decode())
            continue  # the PDF has the same content; tests/report reads PDFs with pdftotext
        parts.append(data.decode())
    return "\n".join(parts)


def test_report_reader_sees_only_pseudonyms(open_page, signed_home, captured_downloads):
    text = _every_view(open_page, signed_home, "reader")
    assert "CLN-00" not in text  # no clinic id at all
    assert all(code in text for code in CODES.values())
    for prefix in PATIENT_PREFIX.values():
        assert prefix not in text
    assert QUARANTINED_RAW_ROW not in text
    downloads = _downloads(captured_downloads)
    assert captured_downloads and "CLN-00" not in downloads and "clinic_id" not in downloads
    assert "Registry (all clinics)" in downloads  # the registry pack
    pack_for = by_label(open_page(signed_home, "monthly", "reader").selectbox, "Monthly pack for")
    assert pack_for.options == ["the registry (all clinics)"]  # no clinic's pack for a report reader


def test_clinic_reviewer_sees_its_own_clinic_named_and_no_other(open_page, signed_home, captured_downloads):
    text = _every_view(open_page, signed_home, "reviewer")
    assert "CLN-001" in text
    for other in OTHER_CLINICS:
        assert other not in text
    assert PATIENT_PREFIX["CLN-001"] in text  # its own records
    for other in OTHER_CLINICS:
        assert PATIENT_PREFIX[other] not in text
    assert QUARANTINED_RAW_ROW not in text and REFUSAL_MESSAGE not in text
    at = open_page(signed_home, "monthly", "reviewer")
    pack_for = by_label(at.selectbox, "Monthly pack for")
    assert pack_for.options == ["the registry (all clinics)", "clinic CLN-001"]  # its own clinic only
    pack_for.set_value("CLN-001").run()
    downloads = _downloads(captured_downloads)
    assert "CLN-001" in downloads and "Clinic CLN-001" in downloads  # its own pack, its clinic named
    assert not any(other in downloads or PATIENT_PREFIX[other] in downloads for other in OTHER_CLINICS)


def test_reviewer_table_and_filter_name_its_own_clinic(open_page, signed_home):
    at = open_page(signed_home, "monthly", "reviewer")
    clinic = by_label(at.selectbox, "Clinic")
    names = list(clinic.options)  # as shown
    assert names == ["All clinics", "CLN-001", "Clinic B7K", "Clinic MZ2"]
    table = at.dataframe[0].value
    assert table["Clinic"].tolist() == ["All clinics", "CLN-001", "Clinic B7K", "Clinic MZ2"]
    assert at.sidebar.caption[0].value.endswith("clinic reviewer, CLN-001")
    records = open_page(signed_home, "clinic_records", "reviewer")
    assert not [w for w in records.selectbox if w.label == "Clinic"]  # nothing to choose: its own clinic only


def test_analyst_sees_clinic_ids_and_may_query(open_page, own_signed_home):
    at = open_page(own_signed_home, "sql", "analyst")
    at.text_area[0].input(
        "select clinic_id, count(distinct patient_id) as n from fct_courses group by 1 order by 1"
    )
    by_label(at.button, "Run query").click().run()
    result = next(df.value for df in at.dataframe if "n" in df.value.columns)
    assert result["clinic_id"].tolist() == ["CLN-001", "CLN-002", "CLN-003"]
    log = access_log.read(own_signed_home)
    sql = log[log["kind"] == "sql"]
    assert sql["user"].tolist() == [USERS["analyst"]["email"]] and sql["rows"].tolist() == [3]
    assert "count(distinct patient_id)" in sql["target"].iloc[0]
    text = all_text(open_page(own_signed_home, "data_quality", "analyst"))
    assert QUARANTINED_RAW_ROW not in text and REFUSAL_MESSAGE not in text


def test_staff_reads_quarantine_and_the_access_log(open_page, own_signed_home):
    open_page(own_signed_home, "monthly", "reader")
    open_page(own_signed_home, "monthly", "unmapped")
    at = open_page(own_signed_home, "quarantine", "staff")
    assert QUARANTINED_RAW_ROW in all_text(at) and REFUSAL_MESSAGE in all_text(at)
    log_page = open_page(own_signed_home, "access_log", "staff")
    log = next(df.value for df in log_page.dataframe if "kind" in df.value.columns)
    assert {USERS["reader"]["email"], USERS["unmapped"]["email"], USERS["staff"]["email"]} <= set(log["user"])
    refused = log[(log["user"] == USERS["unmapped"]["email"])]
    assert refused["kind"].tolist() == ["sign_in"] and refused["ok"].tolist() == [False]
    views = set(log.loc[log["user"] == USERS["staff"]["email"], "target"])
    assert {"restricted:quarantine", "restricted:load_audit", "restricted:refusals"} <= views


@pytest.mark.parametrize("user", ["unmapped", "reviewer_unknown_clinic"])
@pytest.mark.parametrize("page", ["monthly", "sql", "quarantine"])
def test_a_user_without_a_role_sees_a_refusal_and_nothing_else(open_page, signed_home, user, page):
    at = open_page(signed_home, "monthly", user)
    with contextlib.suppress(ValueError):  # no navigation at all for this user
        at.switch_page(PAGES[page]).run()
    assert [t.value for t in at.title] == ["Ketamine migraine registry"]
    assert len(at.warning) == 1 and "nothing the registry can show you" in at.warning[0].value
    assert USERS[user]["email"] in at.warning[0].value
    assert [b.label for b in at.button] == ["Sign out"]
    assert not at.dataframe and not at.metric and not at.selectbox and not at.sidebar.caption
    assert not at.get("vega_lite_chart")


def test_not_signed_in_shows_only_the_sign_in_button(open_page, signed_home):
    from dashboard_helpers import APP
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 40,
                          "client_id": "c", "client_secret": "s", "server_metadata_url": "http://127.0.0.1:9/x"}  # fmt: skip
    open_page(signed_home, "monthly", None)  # sets REGISTRY_HOME to the signed-in home
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Sign in with Test IdP" in at.markdown[0].value
    assert not at.dataframe and not at.metric and not at.selectbox and not at.sidebar.caption


def test_a_page_file_run_directly_still_checks_the_registry(use_home, signed_home):
    """Running a page outside st.navigation (no entry for the role) is refused before any read."""
    from streamlit.testing.v1 import AppTest

    from dashboard.pages import page_path, spec

    use_home(signed_home)
    at = AppTest.from_file(str(page_path(spec("sql"))), default_timeout=30)
    at.user = {"is_logged_in": True, **USERS["reader"]}
    at.run()
    assert [e.value for e in at.error] == ["Your role does not give access to this page."]
    assert not at.text_area and not at.dataframe


def test_cached_results_do_not_cross_from_analyst_to_reader(open_page, signed_home):
    analyst = all_text(open_page(signed_home, "monthly", "analyst"))
    assert "CLN-002" in analyst  # the analyst's cache now holds clinic ids for these very queries
    reader = all_text(open_page(signed_home, "monthly", "reader"))
    assert "CLN-00" not in reader


def test_trusted_user_headers_turn_sign_in_off(open_page, signed_home):
    """Headers configured as trusted would override the signed-in identity: nobody is let in then."""
    from streamlit import config

    before = config.get_option("server.trustedUserHeaders")
    config.set_option("server.trustedUserHeaders", {"X-Forwarded-Email": "email"})
    try:
        at = open_page(signed_home, "monthly", "staff")
    finally:
        config.set_option("server.trustedUserHeaders", before)
    assert [e.value for e in at.error] == [
        "The registry's sign-in is not set up correctly; the operator has been told (server log)."
    ]
    assert not at.dataframe and not at.metric

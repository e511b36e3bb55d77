"""Who is using this browser session: sign-in, the polite refusal, local operator mode, the sidebar.

With ``<home>/config/auth.toml`` the user signs in through the organisation's OpenID Connect provider
(Streamlit's ``st.login``; the server is started with the secrets file ``outcome_registry.auth`` writes)
and ``<home>/config/access.toml`` turns the ID token's claims into a principal. Streamlit fills
``st.user`` from a cookie signed with the home's cookie secret, so a browser cannot forge claims.
Without ``auth.toml`` the one local operator (staff) is served, and only on the loopback interface.

Nothing here is settable from the browser: the principal is derived on every run from ``st.user`` and
the home's config, never kept in session state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import streamlit as st

from dashboard import pages, queries
from dashboard.queries import QueryLayer
from outcome_registry import access_log, auth
from outcome_registry.access import (
    ROLE_LABELS,
    Principal,
    Refusal,
    access_path,
    load_access_config,
    local_operator,
    principal_from_claims,
)
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

APP_TITLE = "Ketamine migraine registry"
_SEEN_KEY = "_registry_seen_views"
_SIGNED_IN_KEY = "_registry_sign_in_logged"
_LOG = logging.getLogger("outcome_registry.dashboard")


@dataclass(frozen=True)
class Context:
    home: RegistryHome
    principal: Principal
    q: QueryLayer


def _stop_with(kind: str, message: str, *, sign_out: bool = False) -> NoReturn:
    st.title(APP_TITLE)
    getattr(st, kind)(message, icon=":material/lock:")
    if sign_out and st.button("Sign out", type="primary"):
        st.logout()
    st.stop()


def _operator_problem(message: str, local: bool) -> NoReturn:
    """A configuration fault: the operator reads the details in the server log; a remote user does not."""
    _LOG.error(message)
    if local:
        _stop_with("error", message)
    _stop_with(
        "error", "The registry's sign-in is not set up correctly; the operator has been told (server log)."
    )


def _has_auth_secrets() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, RegistryError):
        return False
    except Exception:  # Streamlit raises its own error when no secrets file exists at all
        return False


def _header(name: str) -> str | None:
    try:
        return st.context.headers.get(name)
    except Exception:  # no request headers outside a browser session (e.g. AppTest)
        return None


def _local_principal() -> Principal:
    address = st.get_option("server.address")
    if not auth.is_loopback(address):
        _stop_with(
            "error",
            "This dashboard has no identity provider configured, so it serves only the local operator "
            "(registry staff) and must listen on 127.0.0.1. Start it with `outcome-registry dashboard`, or "
            "configure sign-in (docs/ACCESS.md) to serve other machines.",
        )
    if _header("X-Forwarded-For") or _header("Forwarded"):
        _stop_with(
            "error",
            "This request came through a proxy, but without an identity provider the dashboard serves only "
            "the local operator on this machine. Configure sign-in (docs/ACCESS.md) to serve others.",
        )
    return local_operator()


def _signed_in_principal(home: RegistryHome) -> Principal:
    if st.get_option("server.trustedUserHeaders"):
        _operator_problem(
            "server.trustedUserHeaders is set: request headers would override the signed-in identity. "
            "Remove it from the Streamlit configuration; the registry signs users in with OpenID Connect.",
            local=False,
        )
    try:
        provider = auth.load_provider(home)
        mapping = load_access_config(home)
    except RegistryError as exc:
        _operator_problem(exc.message, local=False)
    assert provider is not None
    user: dict[str, Any] = st.user.to_dict()
    if user.get("is_logged_in") is not True:
        if not _has_auth_secrets():
            _operator_problem(
                f"Sign-in is configured in {auth.auth_path(home)} but the server was started without it: "
                "start the dashboard with `outcome-registry dashboard`, which hands the settings to Streamlit.",
                local=False,
            )
        st.title(APP_TITLE)
        st.write(f"Sign in with {provider.name} to see the registry.")
        if st.button("Sign in", type="primary", icon=":material/login:"):
            st.login()
        st.stop()
    if mapping is None:
        _LOG.error("No %s: every signed-in user is refused.", access_path(home))
    outcome = principal_from_claims(mapping, user, queries.published_clinic_ids(home))
    if isinstance(outcome, Refusal):
        if not st.session_state.get(_SIGNED_IN_KEY):
            st.session_state[_SIGNED_IN_KEY] = True
            access_log.record(home, outcome, "sign_in", "dashboard", ok=False, detail=outcome.reason)
        _stop_with(
            "warning",
            f"You are signed in as {outcome.display_name} ({outcome.user}), but {outcome.reason}, so there is "
            "nothing the registry can show you. If you need access, ask the registry staff to give your "
            "account a registry role; then sign out and in again.",
            sign_out=True,
        )
    if not st.session_state.get(_SIGNED_IN_KEY):
        st.session_state[_SIGNED_IN_KEY] = True
        access_log.record(home, outcome, "sign_in", "dashboard")
    return outcome


def current() -> Context:
    """The signed-in (or local) principal and its query layer; otherwise sign-in or refusal, and stop."""
    home = queries.registry_home()
    principal = _signed_in_principal(home) if auth.provider_configured(home) else _local_principal()
    seen = st.session_state.setdefault(_SEEN_KEY, set())
    return Context(home, principal, QueryLayer(home, principal, seen=seen))


def page(key: str) -> Context:
    """Run at the top of every page file: the page must be in the principal's part of the registry."""
    ctx = current()
    if not pages.allowed(ctx.principal, key):
        ctx.q.log("denied", f"page:{key}", ok=False)
        st.error("Your role does not give access to this page.", icon=":material/lock:")
        st.stop()
    return ctx


def role_text(principal: Principal) -> str:
    if principal.local:
        return "local operator (registry staff)"
    text = ROLE_LABELS[principal.role]
    return f"{text}, {principal.clinic_id}" if principal.clinic_id else text


def sidebar(ctx: Context) -> None:
    with st.sidebar:
        if ctx.principal.local:
            st.caption(f"Signed in as **{role_text(ctx.principal)}**, no identity provider configured.")
        else:
            st.caption(f"Signed in as **{ctx.principal.display_name}** · {role_text(ctx.principal)}")
            if st.button("Sign out", icon=":material/logout:"):
                st.logout()
        ident = ctx.q.marts_identity()
        if ctx.principal.is_staff:
            st.caption(f"Registry home: `{ctx.home.root}`")
        if ident is None:
            st.caption("Nothing published yet.")
        else:
            published_at = datetime.fromtimestamp(ident.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")
            st.caption(f"Warehouse published {published_at}")
        st.caption("Figures describing 1–10 patients, courses, sessions or events are shown as `<11`.")

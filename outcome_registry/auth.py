"""Sign-in settings for the dashboard: the operator's provider file, and what Streamlit is started with.

The identity provider (OpenID Connect) is configured in ``<home>/config/auth.toml``, never in the
repository. Streamlit reads its ``[auth]`` section from a secrets file; ``runtime_secrets`` writes one
from the home's config into a private runtime folder (``<home>/state/dashboard/``, 0700, the file 0600)
each time the dashboard starts, and the server is pointed at it with ``--secrets.files``. The cookie
secret that signs the sign-in cookie is generated once per home and kept beside it.

Without ``auth.toml`` the dashboard serves one local operator (staff rights) and binds the loopback
interface only (docs/ACCESS.md).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outcome_registry.errors import RegistryError
from outcome_registry.paths import read_toml

if TYPE_CHECKING:
    from outcome_registry.paths import RegistryHome

AUTH_FILE = "auth.toml"
LOCAL_ADDRESS = "127.0.0.1"
_REQUIRED = ("server_metadata_url", "client_id", "client_secret", "redirect_uri")
_OPTIONAL = ("name", "client_kwargs")
DEFAULT_SCOPE = "openid profile email"


def auth_path(home: RegistryHome) -> Path:
    return home.config_dir / AUTH_FILE


def runtime_dir(home: RegistryHome) -> Path:
    """Private folder for what the running dashboard needs: the generated secrets and the cookie secret."""
    return home.state_dir / "dashboard"


@dataclass(frozen=True)
class ProviderConfig:
    """One OpenID Connect provider (docs/ACCESS.md, "Configuring a provider")."""

    server_metadata_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    name: str = "your organisation's account"
    client_kwargs: Mapping[str, str] = field(default_factory=lambda: {"scope": DEFAULT_SCOPE})


def provider_configured(home: RegistryHome) -> bool:
    return auth_path(home).is_file()


def load_provider(home: RegistryHome) -> ProviderConfig | None:
    """The provider of ``<home>/config/auth.toml``; None when the file is absent (local operator mode)."""
    path = auth_path(home)
    data = read_toml(path, "The sign-in settings")
    return None if data is None else parse_provider(data, str(path))


def parse_provider(data: Mapping[str, Any], where: str = AUTH_FILE) -> ProviderConfig:
    section = data.get("provider")
    if not isinstance(section, Mapping) or set(data) - {"provider"}:
        raise RegistryError(f"{where} must hold one [provider] table (see docs/ACCESS.md).")
    missing = [k for k in _REQUIRED if not isinstance(section.get(k), str) or not section.get(k)]
    if missing:
        raise RegistryError(f"{where}: [provider] lacks {', '.join(missing)} (see docs/ACCESS.md).")
    unknown = set(section) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise RegistryError(
            f"{where}: [provider] has unknown keys {', '.join(sorted(unknown))}; it takes "
            f"{', '.join(_REQUIRED + _OPTIONAL)}."
        )
    if not section["redirect_uri"].rstrip("/").endswith("/oauth2callback"):
        raise RegistryError(
            f"{where}: redirect_uri must be the dashboard's own address ending in /oauth2callback "
            "(e.g. https://registry.example.org/oauth2callback), as registered with the provider."
        )
    kwargs = section.get("client_kwargs", {"scope": DEFAULT_SCOPE})
    if not isinstance(kwargs, Mapping) or not all(isinstance(v, str) for v in kwargs.values()):
        raise RegistryError(
            f'{where}: client_kwargs must be a table of strings, e.g. {{ scope = "openid" }}.'
        )
    return ProviderConfig(
        server_metadata_url=section["server_metadata_url"],
        client_id=section["client_id"],
        client_secret=section["client_secret"],
        redirect_uri=section["redirect_uri"],
        name=str(section.get("name") or ProviderConfig.name),
        client_kwargs=dict(kwargs),
    )


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def cookie_secret(home: RegistryHome) -> str:
    """The secret that signs the sign-in cookie: made once per home, so a restart keeps users signed in."""
    folder = runtime_dir(home)
    _private_dir(folder)
    path = folder / "cookie_secret"
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if len(value) < 32:
        value = secrets.token_urlsafe(48)
        _write_private(path, value + "\n")
    return value


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string once non-ASCII stays literal (no surrogate escapes).
    return json.dumps(value, ensure_ascii=False)


def streamlit_secrets(provider: ProviderConfig, secret: str) -> str:
    """The ``[auth]`` section Streamlit's st.login reads, for one (default) provider."""
    lines = [
        "# Generated by `outcome-registry dashboard` from config/auth.toml at every start; do not edit.",
        "[auth]",
        f"redirect_uri = {_toml_string(provider.redirect_uri)}",
        f"cookie_secret = {_toml_string(secret)}",
        f"client_id = {_toml_string(provider.client_id)}",
        f"client_secret = {_toml_string(provider.client_secret)}",
        f"server_metadata_url = {_toml_string(provider.server_metadata_url)}",
        "",
        "[auth.client_kwargs]",
        *(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in provider.client_kwargs.items()),
    ]
    return "\n".join(lines) + "\n"


def runtime_secrets(home: RegistryHome) -> Path | None:
    """Write the secrets file the server starts with; None (and any old file removed) in local mode."""
    path = runtime_dir(home) / "secrets.toml"
    provider = load_provider(home)
    if provider is None:
        path.unlink(missing_ok=True)
        return None
    _write_private(path, streamlit_secrets(provider, cookie_secret(home)))
    return path


def is_loopback(address: str | None) -> bool:
    """Whether binding ``address`` keeps the server on this machine (unset binds every interface)."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(home: RegistryHome, address: str) -> None:
    """Refuse to serve the local operator (staff rights, no sign-in) on anything but the loopback."""
    if is_loopback(address) or provider_configured(home):
        return
    raise RegistryError(
        f"Refusing to serve the dashboard on {address}: without an identity provider it runs as the "
        "local operator with registry-staff rights, so it only listens on 127.0.0.1. To serve other "
        f"machines, configure sign-in in {auth_path(home)} and the role mapping in "
        f"{home.config_dir / 'access.toml'} (docs/ACCESS.md), or use --address 127.0.0.1."
    )

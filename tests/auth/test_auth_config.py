"""Provider settings (config/auth.toml), the secrets file Streamlit is started with, and local mode's bind rule."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from outcome_registry import auth
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

PROVIDER = """\
[provider]
name = "Keycloak"
server_metadata_url = "https://sso.example.org/realms/registry/.well-known/openid-configuration"
client_id = "outcome-registry"
client_secret = "s3cr\\"et"
redirect_uri = "https://registry.example.org/oauth2callback"
client_kwargs = { scope = "openid profile email", prompt = "select_account" }
"""


def _configure(home: RegistryHome, text: str = PROVIDER) -> None:
    (home.root / "config").mkdir(exist_ok=True)
    (home.root / "config" / "auth.toml").write_text(text)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_file_carries_the_provider_and_a_private_cookie_secret(home):
    _configure(home)
    path = auth.runtime_secrets(home)
    assert path == home.state_dir / "dashboard" / "secrets.toml"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    section = tomllib.loads(path.read_text())["auth"]
    assert section["client_secret"] == 's3cr"et'  # escaped on the way out, intact on the way in
    assert section["redirect_uri"] == "https://registry.example.org/oauth2callback"
    assert section["server_metadata_url"].startswith("https://sso.example.org/")
    assert section["client_kwargs"] == {"scope": "openid profile email", "prompt": "select_account"}
    assert len(section["cookie_secret"]) >= 32
    secret_file = path.parent / "cookie_secret"
    assert _mode(secret_file) == 0o600
    # The cookie secret is made once per home: a restart keeps users signed in.
    again = tomllib.loads(auth.runtime_secrets(home).read_text())["auth"]
    assert again["cookie_secret"] == section["cookie_secret"]


def test_local_mode_writes_no_secrets_and_removes_an_old_file(home):
    _configure(home)
    path = auth.runtime_secrets(home)
    (home.root / "config" / "auth.toml").unlink()
    assert auth.runtime_secrets(home) is None
    assert not path.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "one \\[provider\\] table"),
        ("[provider]\nclient_id = 'x'\n", "lacks server_metadata_url, client_secret, redirect_uri"),
        (PROVIDER.replace("/oauth2callback", "/callback"), "must be the dashboard's own address"),
        (PROVIDER + "cookie_secret = 'x'\n", "unknown keys cookie_secret"),
        ("[provider\n", "could not be read"),
    ],
)
def test_provider_errors(home, text, message):
    _configure(home, text)
    with pytest.raises(RegistryError, match=message):
        auth.load_provider(home)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.1.2.3", True),
     ("0.0.0.0", False), ("", False), (None, False), ("::", False), ("192.168.1.5", False), ("registry.example.org", False)],
)  # fmt: skip
def test_is_loopback(address, loopback):
    assert auth.is_loopback(address) is loopback


def test_local_mode_refuses_a_public_address(home):
    with pytest.raises(RegistryError, match="only listens on 127.0.0.1"):
        auth.check_bind(home, "0.0.0.0")
    auth.check_bind(home, "127.0.0.1")
    _configure(home)
    auth.check_bind(home, "0.0.0.0")  # with sign-in configured, any address may be served


def test_cli_dashboard_refuses_a_public_address_without_a_provider(home):
    cli = Path(sys.executable).parent / "outcome-registry"
    result = subprocess.run(
        [str(cli), "--home", str(home.root), "dashboard", "--address", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Refusing to serve the dashboard on 0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout

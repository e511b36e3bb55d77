"""Where a registry home keeps its files, and who may read them (docs/ARCHITECTURE.md, docs/OPERATIONS.md)."""

from __future__ import annotations

import grp
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOME = "registry_home"
PROJECT_DIR = Path(__file__).resolve().parent.parent
SETTINGS_FILE = "registry.toml"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home given, else $REGISTRY_HOME, else ./registry_home."""
    if home is None:
        home = os.environ.get("REGISTRY_HOME") or DEFAULT_HOME
    return Path(home).expanduser().resolve()


@dataclass(frozen=True)
class RegistryHome:
    root: Path

    @classmethod
    def at(cls, home: str | os.PathLike[str] | None = None, *, create: bool = True) -> RegistryHome:
        h = cls(resolve_home(home))
        if create:
            h.ensure()
        return h

    def ensure(self) -> None:
        """Create the home's folders; the private ones (config, state, restricted) get mode 0700."""
        for d in (self.root, self.build_dir, self.published_dir, self.dbt_profiles_dir, self.gx_dir):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.config_dir, self.state_dir, self.restricted_dir, self.locks_dir):
            if not d.exists():
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask

    # --- the store and the build ---------------------------------------------------------------------

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.duckdb"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def working_db(self) -> Path:
        return self.build_dir / "working.duckdb"

    # --- published tiers (SPEC §1) --------------------------------------------------------------------

    @property
    def published_dir(self) -> Path:
        return self.root / "published"

    @property
    def published_db(self) -> Path:
        """The row-level tier (analysts, staff)."""
        return self.published_dir / "registry.duckdb"

    @property
    def parquet_dir(self) -> Path:
        """Symlink onto ``parquet.<build_id>/``: the row-level tier as Parquet."""
        return self.published_dir / "parquet"

    @property
    def aggregates_db(self) -> Path:
        """The aggregate tier (report readers, clinic reviewers): suppressed aggregates, no clinic_id."""
        return self.published_dir / "aggregates.duckdb"

    @property
    def aggregates_dir(self) -> Path:
        """Symlink onto ``aggregates.<build_id>/``: the aggregate tier as Parquet."""
        return self.published_dir / "aggregates"

    @property
    def clinics_dir(self) -> Path:
        return self.published_dir / "clinics"

    def clinic_db(self, clinic_id: str) -> Path:
        """One clinic's own row-level records (its clinic reviewers). clinic_id is a checked identifier."""
        return self.clinics_dir / clinic_id / "clinic.duckdb"

    @property
    def validation_history(self) -> Path:
        return self.published_dir / "validation_history.parquet"

    @property
    def restricted_dir(self) -> Path:
        """Staff only: quarantined rows, refusals, load audit, pseudonym map, withdrawals."""
        return self.published_dir / "restricted"

    # --- operator configuration and state -------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / SETTINGS_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    @property
    def access_log(self) -> Path:
        return self.state_dir / "access_log.jsonl"

    @property
    def duckdb_tmp_dir(self) -> Path:
        return self.state_dir / "duckdb_tmp"

    @property
    def dbt_profiles_dir(self) -> Path:
        return self.state_dir / "dbt"

    @property
    def dbt_target_dir(self) -> Path:
        return self.dbt_profiles_dir / "target"

    @property
    def gx_dir(self) -> Path:
        return self.state_dir / "gx"


def read_toml(path: Path, what: str) -> dict[str, Any] | None:
    """One of the home's config files (``what`` names it in messages) as a dict; None when it is absent. A
    file that cannot be read or parsed is an error that names the file and the position, never a value."""
    from outcome_registry.errors import RegistryError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(
            f"{what} {path} could not be read ({type(exc).__name__}). Fix it and retry."
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message gives the line and column, not the text
        raise RegistryError(f"{what} {path} could not be read as TOML ({exc}). Fix it and retry.") from None


def read_settings(home: RegistryHome) -> dict[str, Any]:
    """``config/registry.toml`` as a dict ({} when absent). A file that does not parse is an error."""
    return read_toml(home.settings_file, "The registry settings file") or {}


@dataclass(frozen=True)
class TierModes:
    """File modes of the published tiers (docs/OPERATIONS.md, "Who can read what on disk").

    The row-level tier is readable by the registry's own account only, unless the operator names a group
    in ``config/registry.toml`` (``[publish] row_level_group = "analysts"``): then that group may read it
    too. The aggregate tier is world-readable; the restricted tier is always owner-only.
    """

    group_gid: int | None = None

    @property
    def row_level_file(self) -> int:
        return 0o640 if self.group_gid is not None else 0o600

    @property
    def row_level_dir(self) -> int:
        return 0o750 if self.group_gid is not None else 0o700

    aggregate_file: int = 0o644
    aggregate_dir: int = 0o755
    restricted_file: int = 0o600
    restricted_dir: int = 0o700
    published_dir: int = 0o755

    def row_level(self, path: Path) -> None:
        """Give a row-level file or folder its mode (and the analysts' group, if configured)."""
        os.chmod(path, self.row_level_dir if path.is_dir() else self.row_level_file)
        if self.group_gid is not None:
            os.chown(path, -1, self.group_gid, follow_symlinks=False)


def tier_modes(home: RegistryHome) -> TierModes:
    """The modes for this home, from ``config/registry.toml``; an unknown group is an error."""
    from outcome_registry.errors import RegistryError

    group = (read_settings(home).get("publish") or {}).get("row_level_group")
    if group in (None, ""):
        return TierModes()
    if not isinstance(group, str):
        raise RegistryError(f"row_level_group in {home.settings_file} must be a group name (text).")
    try:
        return TierModes(group_gid=grp.getgrnam(group).gr_gid)
    except KeyError:
        raise RegistryError(
            f"The group named by row_level_group in {home.settings_file} does not exist on this machine. "
            "Create it (groupadd) or remove the setting; nothing was published."
        ) from None

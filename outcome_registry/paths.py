"""Where a registry home keeps its files (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "registry_home"
PROJECT_DIR = Path(__file__).resolve().parent.parent


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
        for d in (
            self.root,
            self.build_dir,
            self.published_dir,
            self.restricted_dir,
            self.state_dir,
            self.dbt_profiles_dir,
            self.gx_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.duckdb"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def working_db(self) -> Path:
        return self.build_dir / "working.duckdb"

    @property
    def published_dir(self) -> Path:
        return self.root / "published"

    @property
    def published_db(self) -> Path:
        return self.published_dir / "registry.duckdb"

    @property
    def parquet_dir(self) -> Path:
        return self.published_dir / "parquet"

    @property
    def validation_history(self) -> Path:
        return self.published_dir / "validation_history.parquet"

    @property
    def restricted_dir(self) -> Path:
        return self.published_dir / "restricted"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def dbt_profiles_dir(self) -> Path:
        return self.state_dir / "dbt"

    @property
    def dbt_target_dir(self) -> Path:
        return self.dbt_profiles_dir / "target"

    @property
    def gx_dir(self) -> Path:
        return self.state_dir / "gx"

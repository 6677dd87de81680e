"""The CLI's shared state: settings resolved once from --config, the environment and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.db import Database, open_database
from core.settings import Settings, load_settings

__all__ = ["CliState", "state"]


@dataclass
class CliState:
    config: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def db(self) -> Database:
        return open_database(self.settings)


state = CliState()

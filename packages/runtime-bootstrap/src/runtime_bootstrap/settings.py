"""Application settings: the core's ``WFR_*`` variables plus the bootstrap's own."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime_core.config import ConfigError, RuntimeSettings

__all__ = ["AppSettings", "ConfigError"]


@dataclass(frozen=True)
class AppSettings:
    """Settings of ``wfr`` commands.

    When ``WFR_TEMPORAL_ADDRESS`` is not set, commands that need a stack start the embedded one
    (dev server, SQLite, in-process worker); when it is set they use that Temporal and
    ``WFR_DATABASE_URL`` and expect a workflow-worker to be running.
    """

    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    external: bool = False
    home: str = ".wfr"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        """Read settings from the environment.

        Raises:
            ConfigError: A variable holds an unusable value.
        """
        env = os.environ if env is None else env
        return cls(runtime=RuntimeSettings.from_env(env), external="WFR_TEMPORAL_ADDRESS" in env, home=env.get("WFR_HOME", ".wfr"))

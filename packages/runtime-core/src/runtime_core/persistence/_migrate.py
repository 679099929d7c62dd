"""Alembic migrations shipped inside runtime-core, applied through a small wrapper."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from runtime_core.persistence._database import Database

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade", "upgrade_connection"]

_HERE = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic config pointing at the packaged migrations, optionally bound to a connection."""
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", "runtime_core.persistence:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped in this package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Upgrade the database behind a (sync) connection."""
    command.upgrade(alembic_config(connection), revision)


async def upgrade(database: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    async with database.engine.begin() as conn:
        await conn.run_sync(upgrade_connection, revision)


async def current_revision(database: Database) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    async with database.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())

"""Run the Alembic migrations programmatically, so `tool-server migrate` needs no alembic.ini.

`prepare_schema` is what every command that opens the database runs first: it only reads the
recorded revision (a few milliseconds) and migrates only when the schema is behind. The
embedded SQLite database migrates itself; a shared database (PostgreSQL) is migrated on
purpose, with `tool-server migrate`, so a schema change never happens as a side effect.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import OperationalError

from tool_server.store.database import prepare_sqlite_file, sync_database_url

__all__ = ["SchemaError", "alembic_config", "head_revisions", "prepare_schema", "schema_state", "upgrade_database"]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

SchemaState = Literal["current", "behind", "ahead"]


class SchemaError(Exception):
    """The database's schema is not the one this version needs, and it is not ours to change here."""


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and the given database."""
    url = sync_database_url(database_url)
    prepare_sqlite_file(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation treats '%' specially; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (the newest by default)."""
    command.upgrade(alembic_config(database_url), revision)


@cache
def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revisions() -> frozenset[str]:
    """The newest revision(s) of the packaged migrations."""
    return frozenset(_scripts().get_heads())


def _recorded_revisions(database_url: str) -> frozenset[str]:
    url = sync_database_url(database_url)
    prepare_sqlite_file(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return frozenset(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def schema_state(database_url: str) -> SchemaState:
    """`current`, `behind` (never migrated, or older), or `ahead` (migrated by a newer release)."""
    recorded, heads = _recorded_revisions(database_url), head_revisions()
    if recorded == heads:
        return "current"
    known = {script.revision for script in _scripts().walk_revisions()}
    return "behind" if recorded <= known else "ahead"


def prepare_schema(database_url: str, *, migrate_embedded: bool = True) -> Literal["current", "migrated"]:
    """Make sure the schema is current before a command uses the database.

    SQLite (the embedded default) is migrated when behind, unless `migrate_embedded` is off.
    Any other database raises `SchemaError` saying to run `tool-server migrate`; so does a
    database a newer release migrated.
    """
    state = schema_state(database_url)
    if state == "current":
        return "current"
    if state == "ahead":
        raise SchemaError(
            "the database was migrated by a newer release of tool-server than this one; upgrade tool-server"
        )
    if not migrate_embedded or sync_database_url(database_url).get_backend_name() != "sqlite":
        raise SchemaError("the database schema is not up to date: run `tool-server migrate` first")
    try:
        upgrade_database(database_url)
    except OperationalError:
        # Two processes started on a fresh file at once: the other one may have migrated it.
        if schema_state(database_url) != "current":
            raise
    logger.info("migrated the embedded database to the current schema")
    return "migrated"

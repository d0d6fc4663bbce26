"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from tool_server.store.migrate import upgrade_database
from tool_server.store.tables import Base


def test_the_migrated_schema_matches_the_tables_the_code_declares(migrated_template: Path) -> None:
    engine = create_engine(f"sqlite:///{migrated_template}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/twice.db"

    upgrade_database(url)
    upgrade_database(url)

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == "0001"
    finally:
        engine.dispose()

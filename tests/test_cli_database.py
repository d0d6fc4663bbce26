"""A fresh machine: every command finds a ready database, and the personal data on disk is private."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.support.postgres import create_database
from tool_server.store.migrate import head_revisions, prepare_schema, schema_state, upgrade_database

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))
BARE_ENVIRONMENT = {name: value for name, value in os.environ.items() if not name.startswith("TOOL_SERVER_")}


def run(home: Path, *args: str, cwd: Path | None = None, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**BARE_ENVIRONMENT, "TOOL_SERVER_HOME": str(home), **environment}
    return subprocess.run([TOOL_SERVER, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_command_on_a_fresh_home_migrates_the_embedded_database_and_keeps_it_private(tmp_path: Path) -> None:
    home = tmp_path / "home"

    created = run(home, "agents", "create", "--name", "Clinic", cwd=tmp_path)
    listed = run(home, "agents", "list", "--json", cwd=tmp_path)

    assert created.returncode == 0, created.stderr
    assert [agent["name"] for agent in json.loads(listed.stdout)] == ["Clinic"]
    assert "Traceback" not in created.stderr
    assert mode(home) == 0o700
    files = sorted(path.name for path in home.iterdir())
    assert "tool_server.db" in files
    assert "secret.key" in files
    assert {name: mode(home / name) for name in files} == dict.fromkeys(files, 0o600)
    assert not (tmp_path / "data").exists()


def test_the_schema_is_migrated_only_when_it_is_behind_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    upgrade_database(url, "0001")

    assert schema_state(url) == "behind"
    assert prepare_schema(url) == "migrated"
    assert schema_state(url) == "current"
    assert prepare_schema(url) == "current"


def test_a_database_migrated_by_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/newer.db"
    upgrade_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    engine.dispose()

    refused = run(tmp_path, "agents", "list", TOOL_SERVER_DATABASE_URL=url)

    assert schema_state(url) == "ahead"
    assert refused.returncode == 2
    assert "newer release" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_postgresql_database_is_never_migrated_as_a_side_effect(postgres_url: str, tmp_path: Path) -> None:
    url = create_database(postgres_url, "cli_unmigrated")

    refused = run(tmp_path, "agents", "list", TOOL_SERVER_DATABASE_URL=url)

    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "tool-server migrate" in refused.stderr
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    migrated = run(tmp_path, "migrate", TOOL_SERVER_DATABASE_URL=url)
    listed = run(tmp_path, "agents", "list", TOOL_SERVER_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    assert listed.returncode == 0, listed.stderr


def test_serve_without_migrating_refuses_a_schema_that_is_behind(tmp_path: Path) -> None:
    refused = run(tmp_path / "home", "serve", "--no-migrate", "--port", "1")

    assert refused.returncode == 2
    assert "tool-server migrate" in refused.stderr


def test_an_existing_world_readable_database_and_key_are_tightened_on_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "agents", "list").returncode == 0
    for name in ("tool_server.db", "secret.key"):
        (home / name).chmod(0o644)

    listed = run(home, "agents", "list")

    assert listed.returncode == 0, listed.stderr
    assert mode(home / "tool_server.db") == 0o600
    assert mode(home / "secret.key") == 0o600


def test_a_worker_creates_the_dbos_database_beside_the_main_one_readable_only_by_its_owner(tmp_path: Path) -> None:
    home = tmp_path / "home"
    worker = subprocess.Popen(
        [TOOL_SERVER, "worker", "--id", "w1"],
        env={**BARE_ENVIRONMENT, "TOOL_SERVER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        seen = []
        for line in worker.stderr:
            seen.append(line)
            if "post-call worker w1 running" in line:
                break
        else:
            pytest.fail("the worker stopped before it ran:\n" + "".join(seen))
        dbos = sorted(path for path in home.iterdir() if ".dbos" in path.name)
        assert [path.name for path in dbos][:1] == ["tool_server.dbos.db"]
        assert {path.name: mode(path) for path in dbos} == {path.name: 0o600 for path in dbos}
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)


def test_a_database_left_in_the_old_data_folder_is_pointed_out(tmp_path: Path) -> None:
    old = tmp_path / "data" / "tool_server.db"
    old.parent.mkdir()
    upgrade_database(f"sqlite:///{old}")

    listed = run(tmp_path / "home", "agents", "list", cwd=tmp_path)

    assert listed.returncode == 0, listed.stderr
    assert "TOOL_SERVER_HOME=" in listed.stderr
    assert str(tmp_path / "data") in listed.stderr


def test_head_revisions_name_the_newest_migration() -> None:
    versions = Path(__file__).parent.parent / "tool_server" / "store" / "migrations" / "versions"
    newest = max(path.name.split("_")[0] for path in versions.glob("[0-9]*.py"))

    assert head_revisions() == {newest}

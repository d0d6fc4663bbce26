"""Running a parsed command: settings, logging, a database whose schema is current, services."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tool_server.cli.errors import CliError
from tool_server.home import legacy_database
from tool_server.logs import configure_logging
from tool_server.settings import ServerSettings
from tool_server.transports.access_log import MaskedQueryStrings

__all__ = ["load_settings", "ready_database", "run_command"]

logger = logging.getLogger(__name__)


def load_settings() -> ServerSettings:
    """The settings from the environment; a bad value is one line naming its variable."""
    try:
        return ServerSettings()
    except ValidationError as error:
        problem = error.errors()[0]
        variable = "TOOL_SERVER_" + "_".join(str(part) for part in problem["loc"][:1]).upper()
        raise CliError(f"{variable}: {problem['msg']}") from None


def _warn_about_legacy_data(settings: ServerSettings) -> None:
    """An earlier version kept its database in ./data/; say where the data lives now."""
    if "database_url" in settings.model_fields_set:
        return
    legacy = legacy_database(Path.cwd())
    if legacy is not None and legacy.resolve() != (settings.home / legacy.name).resolve():
        logger.warning(
            "%s is from an earlier version, which kept its data under the working directory; data now lives in %s. "
            "To keep using it, set TOOL_SERVER_HOME=%s (or move the files there)",
            legacy,
            settings.home,
            legacy.parent.resolve(),
        )


def ready_database(settings: ServerSettings, *, migrate: bool | None = None) -> None:
    """Make the schema current before a command uses the database.

    `migrate=True` upgrades any database (`serve`, `worker`, `migrate`); `False` only checks and
    stops when it is behind (`--no-migrate`). By default the embedded SQLite database is migrated
    when it is behind, and any other database must be migrated on purpose (`tool-server migrate`).
    """
    from tool_server.store.migrate import prepare_schema, upgrade_database

    if migrate:
        upgrade_database(settings.database_url)
    else:
        prepare_schema(settings.database_url, migrate_embedded=migrate is None)


def _handler(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


async def _with_services(
    settings: ServerSettings, work: Callable[[Any, argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    from tool_server.services import Services

    services = Services.build(settings)
    try:
        return await work(services, args)
    finally:
        await services.aclose()


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command with its settings, logging configured, its database ready."""
    settings = load_settings()
    # uvicorn's access lines mask the phones and emails in query strings before they are written.
    configure_logging(settings.log_level, access_log_filters=(MaskedQueryStrings(),))
    _warn_about_legacy_data(settings)
    handler = _handler(args.handler)
    if args.needs == "settings":
        return int(handler(settings, args))
    ready_database(settings)
    return int(asyncio.run(_with_services(settings, handler, args)))

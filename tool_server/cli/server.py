"""`tool-server serve | migrate | providers | tools`."""

from __future__ import annotations

import argparse
import json

from tool_server.cli.runtime import ready_database
from tool_server.settings import ServerSettings

__all__ = ["migrate", "print_providers", "print_tools", "serve"]


def serve(settings: ServerSettings, args: argparse.Namespace) -> int:
    import uvicorn

    from tool_server.app import create_app

    ready_database(settings, migrate=not args.no_migrate)
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{args.host}:{args.port}"})
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        # Logging is already set up (tool_server.logs); uvicorn's records go through it.
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    return 0


def migrate(settings: ServerSettings, _args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    ready_database(settings, migrate=True)
    print(f"database is up to date: {make_url(settings.database_url).render_as_string(hide_password=True)}")
    return 0


def print_providers(_settings: ServerSettings, _args: argparse.Namespace) -> int:
    from tool_server.providers import PROVIDERS

    providers = [
        {
            "provider": spec.name,
            "capabilities": sorted(spec.capabilities),
            "description": spec.description,
            "secrets": {"required": list(spec.required_secrets), "optional": list(spec.optional_secrets)},
            "settings_schema": spec.settings_model.model_json_schema(),
        }
        for spec in PROVIDERS.values()
    ]
    print(json.dumps(providers, indent=2))
    return 0


def print_tools(_settings: ServerSettings, args: argparse.Namespace) -> int:
    from tool_server.tools.catalogue import CATALOGUE
    from tool_server.transports.schemas import render_tools

    print(json.dumps(render_tools(CATALOGUE, args.format), indent=2))
    return 0

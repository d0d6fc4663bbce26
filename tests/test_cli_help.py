"""`tool-server --help`: fast (nothing heavy imported), every option explained, every provider's options listed."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from integrations.common.spec import CAPABILITIES
from tool_server.cli.parser import CAPABILITY_CHOICES, PLATFORM_CHOICES, build_parser
from tool_server.providers import PROVIDERS
from tool_server.voice.platform_secrets import PLATFORMS

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))
HEAVY = ("sqlalchemy", "googleapiclient", "stripe", "twilio", "hubspot", "dbos", "mcp", "alembic", "uvicorn", "openai")


def test_top_level_help_imports_none_of_the_heavy_libraries() -> None:
    probe = (
        "import json, sys\n"
        "from tool_server.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))), file=sys.stderr)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert ran.returncode == 0, ran.stderr
    assert "serve" in ran.stdout
    assert json.loads(ran.stderr.strip().splitlines()[-1]) == []


def _parsers(
    parser: argparse.ArgumentParser, path: str = "tool-server"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_command_and_option_has_help_text_and_options_show_their_default() -> None:
    missing, defaults_hidden = [], []
    for path, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {c.dest}" for c in action._choices_actions if not c.help]
                continue
            if not action.help:
                missing.append(f"{path} {action.dest}")
            shown = formatter._get_help_string(action) or ""
            if action.option_strings and action.default is not None and "%(default)" not in shown:
                defaults_hidden.append(f"{path} {action.option_strings[0]}")

    assert missing == []
    assert defaults_hidden == []


def test_the_parser_offers_exactly_the_capabilities_and_platforms_the_server_knows() -> None:
    assert CAPABILITY_CHOICES == CAPABILITIES
    assert PLATFORM_CHOICES == PLATFORMS


def test_connect_help_lists_every_providers_settings_and_secrets() -> None:
    shown = subprocess.run([TOOL_SERVER, "connect", "--help"], capture_output=True, text=True, timeout=60)

    assert shown.returncode == 0, shown.stderr
    sections = shown.stdout.split("\n\n  ")
    for spec in PROVIDERS.values():
        section = next(part for part in sections if part.startswith(f"{spec.name} ("))
        for name in (*spec.secret_names, *spec.settings_model.model_fields):
            assert f"--{name.replace('_', '-')} " in section + " ", (spec.name, name)
        for name, info in spec.settings_model.model_fields.items():
            if info.description:
                assert info.description.split()[0] in section, (spec.name, name)
    stripe = next(part for part in sections if part.startswith("stripe ("))
    assert "--api-key  required" in stripe
    assert "--base-url <text>  (default: https://api.stripe.com)" in stripe


def test_every_command_names_a_handler_that_exists_and_takes_what_the_command_gives() -> None:
    leaves = [
        (path, parser)
        for path, parser in _parsers(build_parser())
        if not any(isinstance(action, argparse._SubParsersAction) for action in parser._actions)
    ]
    wrong = []
    for path, parser in leaves:
        module, _, name = str(parser.get_default("handler")).partition(":")
        handler = getattr(importlib.import_module(module), name, None) if module.startswith("tool_server.") else None
        wants_services = parser.get_default("needs") == "services"
        if handler is None or inspect.iscoroutinefunction(handler) != wants_services:
            wrong.append(path)

    assert len(leaves) >= 20
    assert wrong == []

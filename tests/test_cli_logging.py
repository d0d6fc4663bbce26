"""Command output is not buried in SDK chatter: third-party loggers speak up only when debugging."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox_server import ServedSandboxes
from tool_server.logs import ACCESS_LOGGER, QUIET_LOGGERS, SERVER_LOGGERS, configure_logging

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the tests that follow."""
    loggers = [logging.getLogger(name) for name in (None, *QUIET_LOGGERS, *SERVER_LOGGERS)]
    saved = [(list(each.handlers), each.level, each.propagate, list(each.filters)) for each in loggers]
    yield
    for each, (handlers, level, propagate, filters) in zip(loggers, saved, strict=True):
        each.handlers[:], each.filters[:] = handlers, filters
        each.setLevel(level)
        each.propagate = propagate


@pytest.mark.usefixtures("restored_logging")
def test_at_info_the_sdks_are_quiet_and_the_servers_own_lines_are_written() -> None:
    written = io.StringIO()
    configure_logging("info", stream=written)

    logging.getLogger("twilio.http_client").info("-- BEGIN Twilio API Request --")
    logging.getLogger("httpx").info("HTTP Request: GET …")
    logging.getLogger("tool_server.app").info("started")
    logging.getLogger("twilio.http_client").warning("slow answer")

    assert "BEGIN Twilio" not in written.getvalue()
    assert "HTTP Request" not in written.getvalue()
    assert "started" in written.getvalue()
    assert "slow answer" in written.getvalue()


@pytest.mark.usefixtures("restored_logging")
def test_at_debug_the_sdks_are_heard_too() -> None:
    written = io.StringIO()
    configure_logging("debug", stream=written)

    logging.getLogger("twilio.http_client").info("-- BEGIN Twilio API Request --")

    assert "BEGIN Twilio" in written.getvalue()


@pytest.mark.usefixtures("restored_logging")
def test_access_log_filters_see_each_access_line_before_it_is_written() -> None:
    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.args = tuple(str(arg).replace("+12125550142", "+1212555****") for arg in record.args or ())
            return True

    written = io.StringIO()
    configure_logging("info", access_log_filters=[Redact()], stream=written)

    logging.getLogger(ACCESS_LOGGER).info('%s - "%s %s"', "127.0.0.1:5000", "GET", "/x?phone=+12125550142")

    assert "+1212555****" in written.getvalue()
    assert "+12125550142" not in written.getvalue()


def test_a_command_talking_to_twilio_prints_no_sdk_request_logs(
    database_url: str, sandboxes: ServedSandboxes, fresh_sandboxes: None
) -> None:
    environment = {**os.environ, "TOOL_SERVER_DATABASE_URL": database_url, "TOOL_SERVER_PUBLIC_URL": sandboxes.base_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TOOL_SERVER, *args], capture_output=True, text=True, env=environment, timeout=120)

    agent = json.loads(run("agents", "create", "--name", "Clinic", "--sandbox").stdout)
    tested = run("connections", "test", agent["id"])

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "twilio" in tested.stdout
    assert "Twilio API Request" not in tested.stderr
    assert "HTTP Request" not in tested.stderr

"""`tool-server mcp` started the way Claude Desktop starts it: from another directory, with only the
config `tool-server mcp-config` printed, works, sealed connections included."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.e2e

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    base_url: str
    home: Path
    environment: dict[str, str]
    workdir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TOOL_SERVER, *args], capture_output=True, text=True, env=self.environment, cwd=self.workdir, timeout=120
        )


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> threading.Thread:
    """Keep reading the server's log (so it never blocks on a full pipe), one line at a time into `lines`."""

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _wait_for_startup(lines: queue.Queue[str | None]) -> None:
    """Read the server's log until uvicorn says it has started (no polling, no sleeping)."""
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=STARTUP_SECONDS)
        except queue.Empty:
            pytest.fail("tool-server serve did not start:\n" + "".join(seen))
        if line is None:
            pytest.fail("tool-server serve exited:\n" + "".join(seen))
        seen.append(line)
        if "Application startup complete" in line:
            return


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`tool-server serve` on a free port with its own home; its emulators are what the agent connects to."""
    port = free_port()
    home, workdir = tmp_path / "home", tmp_path / "operator"
    workdir.mkdir()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TOOL_SERVER_")}
    environment |= {"TOOL_SERVER_HOME": str(home), "TOOL_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = subprocess.Popen(
        [TOOL_SERVER, "serve", "--port", str(port)],
        env=environment,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = _pump(process, lines)
    try:
        _wait_for_startup(lines)
        yield Served(f"http://127.0.0.1:{port}", home, environment, workdir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=60)
        assert process.stderr is not None
        process.stderr.close()


async def test_an_mcp_client_using_only_the_printed_config_reaches_sealed_connections_from_another_directory(
    served: Served, tmp_path: Path
) -> None:
    created = served.run("agents", "create", "--name", "Smile Dental", "--sandbox")
    assert created.returncode == 0, created.stderr
    agent = json.loads(created.stdout)
    printed = served.run("mcp-config", "--agent", agent["id"], "--name", "clinic")
    assert printed.returncode == 0, printed.stderr
    server = json.loads(printed.stdout)["mcpServers"]["clinic"]
    elsewhere = tmp_path / "claude-desktop"
    elsewhere.mkdir()

    # As an MCP client does: its own directory, the config's command, args and env, nothing else of
    # ours. HOME is an empty folder: a config that missed the home would find no agent there (and
    # the test never touches the real per-user home).
    user = tmp_path / "user"
    environment = {**server["env"], "HOME": str(user), "XDG_DATA_HOME": str(user / "data")}
    parameters = StdioServerParameters(
        command=server["command"], args=server["args"], env=environment, cwd=str(elsewhere)
    )
    async with Client(parameters) as client:
        sent = await client.call_tool("send_sms", {"to": "+12125550142", "body": "See you Monday at 10."})

    assert Path(server["command"]).is_absolute()
    assert server["args"] == ["mcp", "--agent", agent["id"]]
    assert server["env"]["TOOL_SERVER_HOME"] == str(served.home)
    key = (served.home / "secret.key").read_text().strip()
    assert key not in printed.stdout + printed.stderr
    assert sent.is_error is False, sent.structured_content
    assert sent.structured_content is not None
    message_id = sent.structured_content["message"]["message_id"]
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        state = (await http.get("/sandbox/twilio/_state")).json()
    assert message_id in json.dumps(state)
    assert "+12125550142" in json.dumps(state)
    assert sorted(path.name for path in elsewhere.iterdir()) == []

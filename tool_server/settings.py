"""Server settings, read from `TOOL_SERVER_*` environment variables when the app is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tool_server.home import default_database_url, default_home

__all__ = ["LOG_LEVELS", "LogLevel", "ServerSettings"]

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
LOG_LEVELS: tuple[LogLevel, ...] = ("critical", "error", "warning", "info", "debug", "trace")


def _home(data: dict[str, Any]) -> Path:
    # `data` holds the fields validated so far; `home` is declared first so it is there.
    home = data.get("home")
    return home if isinstance(home, Path) else default_home()


class ServerSettings(BaseSettings):
    """Everything the server reads from its environment.

    `home` is the one folder the embedded database, the generated key and the emulators' state
    default to, whatever the working directory. `database_url` takes any SQLAlchemy URL; plain
    `postgresql://` URLs get psycopg 3.
    """

    model_config = SettingsConfigDict(env_prefix="TOOL_SERVER_", extra="ignore")

    home: Path = Field(
        default_factory=default_home,
        description="Where this machine's data lives (database, generated key, emulator state): "
        "$XDG_DATA_HOME/voice-tool-server, else ~/.local/share/voice-tool-server.",
    )
    database_url: str = Field(
        default_factory=lambda data: default_database_url(_home(data)),
        description="Any SQLAlchemy URL; default: SQLite at <home>/tool_server.db.",
    )
    read_deadline_seconds: float = Field(default=5.0, gt=0)
    write_deadline_seconds: float = Field(default=10.0, gt=0)
    tool_deadlines: dict[str, float] = Field(
        default_factory=dict,
        description='Per-tool deadline overrides in seconds, e.g. {"book_appointment": 8}.',
    )
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    idempotency_ttl_hours: float = Field(default=24.0, gt=0)
    idempotency_ttl_without_call_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a write with neither Idempotency-Key nor call id is deduplicated.",
    )
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"])
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    )
    log_level: LogLevel = Field(default="info", description="Our log level; third-party libraries log only at debug.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts connection credentials at rest. Comma-separated: the first key encrypts, every "
        "key decrypts (add a new key first, run `tool-server keys rotate`, then drop the old one).",
    )
    secret_key_file: Path = Field(
        default_factory=lambda data: _home(data) / "secret.key",
        description="Where a generated key is kept when TOOL_SERVER_SECRET_KEY is not set (local use only); "
        "default: <home>/secret.key.",
    )
    sandbox_state_dir: Path = Field(
        default_factory=lambda data: _home(data) / "sandbox",
        description="Where the sandbox emulators keep their state files; default: <home>/sandbox.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="This server's address as providers and platforms reach it (callbacks, sandbox connections).",
    )
    sandbox: bool = Field(default=True, description="Mount the provider emulators under /sandbox/<provider>/.")
    extraction_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API base URL for post-call extraction (e.g. http://127.0.0.1:11434/v1); "
        "unset uses the OpenAI SDK's default.",
    )
    extraction_api_key: SecretStr | None = Field(
        default=None, description="API key for the post-call extraction model; unset runs the deterministic fallback."
    )
    extraction_model: str | None = Field(
        default=None, description="Model name for post-call extraction; unset runs the deterministic fallback."
    )
    extraction_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Per-request timeout for the extraction model (the SDK retries once)."
    )
    postcall: Literal["inline", "enqueue", "off"] = Field(
        default="inline",
        description="Post-call sync in the server process: 'inline' runs the workers here (one process); "
        "'enqueue' only starts workflows for separate `tool-server worker` processes; 'off' records calls only.",
    )
    postcall_system_database_url: str | None = Field(
        default=None,
        description="DBOS system database. Unset: a SQLite file beside an SQLite database "
        "(<home>/tool_server.dbos.db), or the same PostgreSQL database (DBOS keeps its tables in schema dbos).",
    )
    postcall_executor_id: str = Field(
        default="server",
        description="This process's DBOS executor id, one per process; a dead one's work is taken over by any "
        "live worker.",
    )
    postcall_max_attempts: int = Field(default=6, ge=1, le=50, description="Tries per job before it is failed.")
    postcall_retry_base_seconds: float = Field(
        default=2.0, gt=0, description="First retry wait; doubled per attempt, never below the provider's Retry-After."
    )
    postcall_retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest wait between two attempts.")
    postcall_concurrency: int = Field(
        default=16, ge=1, le=1000, description="Jobs one worker runs at once per integration."
    )
    postcall_poll_seconds: float = Field(default=0.2, gt=0, le=10, description="How often workers look for new work.")
    postcall_final_event_wait_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How long a call waits for its platform's final event (Retell call_analyzed) before it is "
        "synced with what arrived.",
    )
    postcall_quiet_poll_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Longest single wait of a follow-up held for quiet hours before it checks the clock again.",
    )
    hooks_allow_private_targets: bool = Field(
        default=False,
        description="Let REST-hook subscribers use loopback and private addresses (tests, a local n8n). Off: "
        "an API key cannot aim deliveries at this server's own network.",
    )
    postcall_sweep_seconds: float = Field(
        default=30.0, gt=0, description="How often queued records that never started are started."
    )
    postcall_heartbeat_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often a worker records that it is alive; it looks for dead workers four times as often.",
    )
    postcall_takeover_after_seconds: float = Field(
        default=3.0,
        gt=0,
        description="A worker silent this long is dead: any live worker (whatever its id) puts its running "
        "workflows back on their queues. More than twice the heartbeat, and more than the workers' clock skew.",
    )
    postcall_rate_limits: bool = Field(
        default=True,
        description="Hold the post-call jobs of each connection, across every worker, to a share of its "
        "provider's documented request limit. Off only against emulators or a provider without limits.",
    )
    postcall_budget_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="The share of each provider's documented request limit (per connection, across every "
        "worker) the post-call jobs may spend; the rest is left to live calls.",
    )
    postcall_request_budgets: dict[str, tuple[int, float]] = Field(
        default_factory=dict,
        description='Per-provider request limits replacing the documented ones: {"hubspot": [190, 10]} for '
        "190 requests per 10 s (a Professional HubSpot account).",
    )

    @field_validator("home", "secret_key_file", "sandbox_state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Absolute once read, so a process that changes directory (or an MCP client starting us
        # from its own) still finds the same files.
        return value.expanduser().absolute()

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

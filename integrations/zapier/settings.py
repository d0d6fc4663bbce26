"""A Zapier connection: where catch hooks live (a setting), and the catch hook URL itself (a secret).

A catch hook URL (`https://hooks.zapier.com/hooks/catch/<account>/<hook>/`) carries no other
credential: anyone holding it can start the Zap. So it is the connection's secret `hook_url`, kept
in the vault, and `CatchHookUrl` keeps it out of every `repr`, log line and error message.
The connector posts only to a hook URL under `base_url`, which is how a sandbox connection
(both pointing at the emulator) is sure never to reach anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from integrations.capabilities.errors import ConfigurationError
from integrations.common.linear_regex import compile_linear
from integrations.common.setting_types import HttpUrl

__all__ = ["HOOK_URL", "CatchHookUrl", "ZapierSettings", "parse_hook_url"]

# The secret's name in the vault (and `tool-server connect AGENT zapier --hook_url …`).
HOOK_URL = "hook_url"

# https://help.zapier.com/hc/en-us/articles/8496288690317-Trigger-Zaps-from-webhooks
# The account is Zapier's numeric user id; URLs without it ("legacy routes", /hooks/catch/<hook>/)
# are refused: Zapier limits them to 1,000 requests per 5 minutes per Zap and now hands out the
# two-part form. A trailing `silent/` asks Zapier to answer with an empty body.
_CATCH_PATH = compile_linear(r"/hooks/catch/([0-9]+)/([A-Za-z0-9]+)/(silent/)?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ZapierSettings(BaseModel):
    """Where Zapier's catch hooks are served. The hook URL itself is the secret `hook_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        default="https://hooks.zapier.com",
        description="Zapier's hooks host; the sandbox emulator's URL in tests and demos. "
        "The hook URL must lie under it.",
    )


@dataclass(frozen=True)
class CatchHookUrl:
    """A checked catch hook URL. Its `repr` and `str` never show the URL (it is the credential)."""

    url: str = field(repr=False)
    silent: bool

    def __str__(self) -> str:
        return f"<Zapier catch hook{' (silent)' if self.silent else ''}>"


def parse_hook_url(hook_url: str | None, base_url: str) -> CatchHookUrl:
    """The vault's `hook_url`, checked to be a catch hook URL under `base_url`.

    Raises `ConfigurationError("hook_url", …)` saying what is wrong, never quoting the URL.
    """
    if not hook_url:
        raise ConfigurationError(HOOK_URL, "the Zapier connection has no catch hook URL; connect it again")
    hook = urlsplit(hook_url.strip())
    base = urlsplit(base_url)
    if (hook.scheme, hook.hostname, _port(hook)) != (base.scheme, base.hostname, _port(base)):
        raise ConfigurationError(
            HOOK_URL, "the catch hook URL is not on the connection's base_url (for Zapier: https://hooks.zapier.com)"
        )
    if hook.username is not None or hook.password is not None or hook.query or hook.fragment:
        raise ConfigurationError(HOOK_URL, "the catch hook URL must not carry a user, a query or a fragment")
    path = hook.path if hook.path.endswith("/") else f"{hook.path}/"
    base_path = base.path.rstrip("/")
    if not path.startswith(f"{base_path}/") or _CATCH_PATH.fullmatch(path[len(base_path) :]) is None:
        raise ConfigurationError(
            HOOK_URL,
            "not a catch hook URL: copy it from the Zap's 'Webhooks by Zapier' Catch Hook trigger "
            "(it looks like https://hooks.zapier.com/hooks/catch/<account>/<hook>/)",
        )
    return CatchHookUrl(url=hook._replace(path=path).geturl(), silent=path.endswith("/silent/"))


def _port(url: SplitResult) -> int | None:
    try:
        return url.port or _DEFAULT_PORTS.get(url.scheme)
    except ValueError:  # a port that is not a number
        return -1

"""Asking an OpenAI-compatible model for an `ExtractionAnswer`, with the prompts shipped in the package.

The prompt files live in the repository's top-level prompts/ folder, which the packaging maps to the
`tool_server.prompts` package: an editable install reads the repository's files, a wheel carries
copies. They are read on every call, so an edited prompt needs no restart.
"""

from __future__ import annotations

import string
from datetime import date
from importlib.resources import files
from importlib.resources.abc import Traversable

import openai
from pydantic import ValidationError

from tool_server.calls.models import CallRecord, Turn
from tool_server.postcall.extraction._answers import ExtractionAnswer, ExtractionSettings

__all__ = ["PROMPTS_DIR", "NoAnswerError", "ask_model", "describe", "read_prompt", "transcript_text"]

PROMPTS_DIR: Traversable = files("tool_server.prompts")
SYSTEM_PROMPT = "postcall_extraction.system.md"
USER_PROMPT = "postcall_extraction.user.md"

_SPEAKER_LABELS = {"agent": "Agent", "caller": "Caller", "tool": "Tool", "other": "Other"}


class NoAnswerError(Exception):
    """The model replied without a parsed answer (a refusal or no choices)."""


def read_prompt(name: str) -> str:
    """The text of the prompt file `name` (e.g. "postcall_extraction.system.md"). OSError if it is missing."""
    return (PROMPTS_DIR / name).read_text(encoding="utf-8")


async def ask_model(
    record: CallRecord, settings: ExtractionSettings, *, today: date, business_timezone: str
) -> ExtractionAnswer:
    """The model's answer for `record`. Raises whatever failed: the SDK's errors, `ValidationError`,
    `NoAnswerError`, `OSError` for an unreadable prompt, `KeyError`/`ValueError` for a bad placeholder."""
    system = read_prompt(SYSTEM_PROMPT)
    user = string.Template(read_prompt(USER_PROMPT)).substitute(
        transcript=transcript_text(record.transcript),
        today=today.isoformat(),
        today_weekday=f"{today:%A}",
        business_timezone=business_timezone,
    )
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    async with openai.AsyncOpenAI(
        base_url=settings.base_url, api_key=api_key, timeout=settings.timeout_seconds, max_retries=1
    ) as client:
        # https://platform.openai.com/docs/guides/structured-outputs: `parse` sends
        # response_format={"type": "json_schema", "json_schema": {"name", "strict": true, "schema"}}
        # built from ExtractionAnswer, and validates the reply with it (ValidationError otherwise).
        completion = await client.chat.completions.parse(
            model=settings.model or "",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format=ExtractionAnswer,
        )
    if not completion.choices or completion.choices[0].message.parsed is None:
        raise NoAnswerError("refusal" if completion.choices and completion.choices[0].message.refusal else "no answer")
    return completion.choices[0].message.parsed


def transcript_text(turns: list[Turn]) -> str:
    """One turn per line, whitespace collapsed, so a turn cannot fake the next speaker's label."""
    return "\n".join(
        f"{_SPEAKER_LABELS[turn.speaker]}: {' '.join(turn.text.split())}" for turn in turns if turn.text.strip()
    )


def describe(exc: BaseException) -> str:
    """What went wrong, for the log. Never the message itself: validation errors quote the model's
    answer, which quotes the caller."""
    if isinstance(exc, openai.APIStatusError):
        return f"{type(exc).__name__} (HTTP {exc.status_code})"
    if isinstance(exc, ValidationError):
        problems = ", ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<answer>'}: {error['type']}" for error in exc.errors()
        )
        return f"answer outside the schema ({problems})"
    return type(exc).__name__

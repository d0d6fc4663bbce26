"""Helpers for voice-platform tests: fixtures on disk and signed requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voice"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def raw(data: Any) -> bytes:
    return json.dumps(data).encode()

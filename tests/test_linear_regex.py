"""Every regular expression in the server runs on RE2, in time linear in the text it reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from integrations.common.linear_regex import compile_linear

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_of_the_server_or_its_integrations_imports_pythons_backtracking_re() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tool_server", "integrations")
        for path in (ROOT / folder).rglob("*.py")
        if any(
            line.strip() in ("import re", "import fnmatch")
            or line.strip().startswith(("from re import", "import re as"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]

    assert offenders == []


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})", "a" * 1_000_000),  # quadratic on Python's re
        (r"\+?\d[\d\s().-]{6,}\d", "1 " * 500_000 + "x"),
        (r"^(a+)+$", "a" * 100_000 + "!"),  # exponential on Python's re
    ],
)
def test_patterns_that_backtrack_badly_on_pythons_re_finish_quickly_on_a_megabyte(pattern: str, text: str) -> None:
    compiled = compile_linear(pattern)
    started = time.perf_counter()
    compiled.search(text)
    assert time.perf_counter() - started < 1.0

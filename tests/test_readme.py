"""The README stays true: its examples carry no date that goes stale."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_no_code_example_in_the_readme_holds_a_fixed_calendar_date() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)
    dated = [line for block in blocks for line in block.splitlines() if re.search(r"\b20\d\d-\d\d-\d\d\b", line)]

    assert blocks, "the README has code examples"
    assert dated == []

"""What a `pip install` of the project gets: every package, and the prompts as package data."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tool_server.postcall.extraction import PROMPTS_DIR, read_prompt

ROOT = Path(__file__).resolve().parents[1]
PROMPT_FILES = sorted(path.name for path in (ROOT / "prompts").glob("*.md"))
CODE_FOLDERS = ("tool_server", "integrations")


def _setuptools_builds_wheels() -> bool:
    # bdist_wheel is part of setuptools from 70.1; before, it comes from the `wheel` package.
    major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_the_prompts_are_read_from_the_repositorys_prompts_folder_in_an_editable_install() -> None:
    assert len(PROMPT_FILES) >= 2
    for name in PROMPT_FILES:
        assert read_prompt(name) == (ROOT / "prompts" / name).read_text(encoding="utf-8")
    assert Path(str(PROMPTS_DIR)).resolve() == ROOT / "prompts"


@pytest.mark.skipif(
    not _setuptools_builds_wheels(),
    reason=f"setuptools {version('setuptools')} cannot build a wheel offline: it needs setuptools>=70.1 "
    "(or the wheel package) in the dev extras",
)
def test_a_built_wheel_carries_every_package_and_the_prompts_and_reads_them_from_itself(tmp_path: Path) -> None:
    # Built from a copy, so the build's build/ and egg-info never land in a shared working tree.
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in (*CODE_FOLDERS, "prompts"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)

    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *offline, "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )

    [wheel] = (tmp_path / "dist").glob("voice_tool_server-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for name in PROMPT_FILES:
        assert f"tool_server/prompts/{name}" in shipped
    modules = {
        path.relative_to(source).as_posix() for folder in CODE_FOLDERS for path in (source / folder).rglob("*.py")
    }
    assert modules - shipped == set(), "add their packages to [tool.setuptools] packages in pyproject.toml"

    # The installed package reads the prompts it carries, from anywhere (-P: not the current folder).
    loaded = subprocess.run(
        [sys.executable, "-P", "-c", _READ_PROMPTS],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    where, prompts = json.loads(loaded.stdout)
    assert Path(where).is_relative_to(tmp_path / "site")
    assert prompts == {name: (ROOT / "prompts" / name).read_text(encoding="utf-8") for name in PROMPT_FILES}


_READ_PROMPTS = f"""
import json
from tool_server.postcall import extraction
print(json.dumps([extraction.__file__, {{name: extraction.read_prompt(name) for name in {PROMPT_FILES!r}}}]))
"""

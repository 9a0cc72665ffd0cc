"""README and docs/: every code block runs here or says why it cannot, links resolve, options are documented.

A block is preceded by a marker comment: `<!-- test: run -->` (run below, in order, in a scratch copy of the
shipped folder's neighbourhood), `<!-- test: tests/FILE.py::NAME -->` (that test runs the same thing),
`<!-- example output: ... -->`, `<!-- example: ... -->`, `<!-- synopsis: ... -->` (what a command prints or
takes, checked by the named test), or `<!-- not run here: WHY -->` / `<!-- not run by the tests: WHY -->` /
`<!-- not code: WHAT -->`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, requires_fashion_mnist

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
KINDS = "test|example output|example|synopsis|not run here|not run by the tests|not code"
MARKER = re.compile(rf"<!-- ({KINDS}): ?(.*?) -->\s*$")
BIN = Path(sys.executable).parent


@dataclass
class Block:
    page: Path
    language: str
    code: str
    kind: str
    detail: str


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.match(before)
        assert marker, f"{page.name}: a {match.group(1) or 'plain'} block has no marker: {match.group(2)[:80]!r}"
        found.append(Block(page, match.group(1), match.group(2), marker.group(1), marker.group(2)))
    return found


def _test_exists(reference: str) -> bool:
    path, _, name = reference.partition("::")
    source = ROOT / path
    return source.is_file() and any(
        isinstance(node, ast.FunctionDef) and node.name == name for node in ast.walk(ast.parse(source.read_text()))
    )


def test_every_code_block_runs_here_or_says_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            references = re.findall(r"tests/[\w/]+\.py::\w+", block.detail)
            if block.kind == "test" and block.detail != "run":
                assert references, f"{page.name}: `test:` names no test: {block.detail}"
            for reference in references:
                assert _test_exists(reference), f"{page.name}: no such test {reference}"
            if block.kind.startswith("not "):
                assert len(block.detail) > 10, f"{page.name}: say why the block cannot run here"


def test_readme_is_a_front_door_and_links_resolve() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_the_pages_tables_are_the_shipped_folders_results() -> None:
    """README's two tables and docs/phones.md's come from models/fashion-mnist-cnn's files
    (benchmarks/readme_tables.py prints them): a regenerated folder and its pages cannot drift apart."""
    from benchmarks.readme_tables import emulated_table, host_table, phone_table

    readme = (ROOT / "README.md").read_text()
    for table in (host_table(), emulated_table()):
        assert "\n".join(table) + "\n" in readme, "\n".join(table)
    assert "\n".join(phone_table()) + "\n" in (ROOT / "docs" / "phones.md").read_text(), "\n".join(phone_table())


def test_cli_reference_documents_every_option() -> None:
    from pipeline.surface.keywords import cli_options
    from pipeline.surface.options import COMMANDS

    reference = (ROOT / "docs" / "cli.md").read_text()
    for command in COMMANDS:
        assert f"edge-pipeline {command}" in reference
        for option in cli_options(command).values():
            flags = (option.opt.flag or option.flag).split("/")
            assert any(f"`{flag}" in reference for flag in flags), f"docs/cli.md does not document {flags[0]}"


def test_the_edge_runtime_synopsis_lists_every_option() -> None:
    from edge_runtime.cli import build_parser

    synopsis = next(b.code for b in blocks(ROOT / "docs" / "cli.md") if b.kind == "synopsis")
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public walk
    for name in ("predict", "evaluate", "bench", "info"):
        assert f"edge-runtime {name} " in synopsis
        for action in commands[name]._actions:  # noqa: SLF001
            long = [o for o in action.option_strings if o.startswith("--") and o not in ("--help", "--debug")]
            assert not long or any(o.split("/")[0] in synopsis for o in long), (name, long)


def _workspace(tmp_path: Path, activate: bool = False) -> dict[str, str]:
    """A scratch directory holding the shipped folder, where blocks run as a user types them (`activate`: the
    commands are not on PATH until the block activates .venv, as on a fresh clone after `make setup`)."""
    shutil.copytree(ROOT / "models" / "fashion-mnist-cnn", tmp_path / "models" / "fashion-mnist-cnn")
    (tmp_path / ".venv").symlink_to(BIN.parent)  # what `make setup` leaves in a clone: blocks activate it as written
    home = tmp_path / "home"
    home.mkdir()
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != BIN.resolve())
    path = path if activate else f"{BIN}{os.pathsep}{path}"
    return {**os.environ, "PATH": path, "HOME": str(home), "COLUMNS": "160"}


def _run_blocks(page: Path, tmp_path: Path, activate: bool = False) -> list[str]:
    env, outputs = _workspace(tmp_path, activate), []
    for block in (b for b in blocks(page) if b.kind == "test" and b.detail == "run"):
        command = ["bash", "-e", "-c", block.code] if block.language == "sh" else [sys.executable, "-c", block.code]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{page.name}: {block.code[:200]}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
        outputs.append(done.stdout)
    return outputs


@requires_fashion_mnist
def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    cli, python = _run_blocks(ROOT / "README.md", tmp_path, activate=True)
    assert "Ship model_" in cli and "bag.jpg" in cli and "Bag" in cli
    compared = json.loads((tmp_path / "models" / "comparison" / "comparison.json").read_text())
    shipped = [row for row in compared["rows"] if row["folder"] == "fashion-mnist-cnn"]
    assert shipped and all(row["accuracy"] for row in shipped), shipped  # measured, though never evaluated here
    assert "dynamic" in python and "variant" in python


@requires_fashion_mnist
def test_docs_blocks_run_as_written(tmp_path: Path) -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "python-api.md":  # run by tests/test_python_api.py, with its checks
            _run_blocks(page, tmp_path / page.stem)

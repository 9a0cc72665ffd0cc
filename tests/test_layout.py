"""The code's shape, checked: small pieces, one metadata parser, and edge_runtime standing alone."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

PACKAGES = ("pipeline", "edge_runtime")


def _sources() -> list:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_function_over_60_lines_and_no_file_over_450() -> None:
    too_long = []
    for path in _sources():
        text = path.read_text()
        if len(text.splitlines()) > 450:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long


def test_metadata_json_is_parsed_in_one_module() -> None:
    """folder_records is the one parser of metadata.json; model_folder (the read side) is the only caller."""
    parsers = [
        path.name
        for path in _sources()
        if re.search(r"^class (FolderMetadata|VariantRecord)\b", path.read_text(), re.M)
    ]
    assert parsers == ["folder_records.py"]
    callers = {
        path.name for path in _sources() if re.search(r"(FolderMetadata|VariantRecord)\.from_dict\(", path.read_text())
    }
    assert callers == {"folder_records.py", "model_folder.py"}
    readers = [
        path.name
        for path in _sources()
        if re.search(r"read_json_object\([^)]*(METADATA_FILE|\"metadata\.json\")", path.read_text())
    ]
    assert readers in ([], ["model_folder.py"])


def test_edge_runtime_imports_neither_pipeline_nor_tensorflow() -> None:
    for path in (ROOT / "edge_runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            assert not any(n.split(".")[0] in ("pipeline", "keras") for n in names), path.name
            # tensorflow only as the named last-resort backend, imported by string in backends.py
            assert not any(n.split(".")[0] == "tensorflow" for n in names), path.name

"""The code's shape, checked: small pieces, one metadata parser, and edge_runtime standing alone."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

PACKAGES = ("pipeline", "edge_runtime")


def _sources() -> list:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _relative(path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_function_over_60_lines_and_no_file_over_450() -> None:
    too_long = []
    for path in [*_sources(), *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]:
        text = path.read_text()
        if len(text.splitlines()) > 450:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long


def test_metadata_json_is_parsed_in_one_module() -> None:
    """folder/records is the one parser of metadata.json; folder/reader (the read side) is the only caller."""
    parsers = [
        _relative(path)
        for path in _sources()
        if re.search(r"^class (FolderMetadata|VariantRecord)\b", path.read_text(), re.M)
    ]
    assert parsers == ["edge_runtime/folder/records.py"]
    callers = {
        _relative(path)
        for path in _sources()
        if re.search(r"(FolderMetadata|VariantRecord)\.from_dict\(", path.read_text())
    }
    assert callers == {"edge_runtime/folder/records.py", "edge_runtime/folder/reader.py"}
    readers = [
        _relative(path)
        for path in _sources()
        if re.search(r"read_json_object\([^)]*(METADATA_FILE|\"metadata\.json\")", path.read_text())
    ]
    assert readers in ([], ["edge_runtime/folder/reader.py"])


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


def _module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, modules: set[str]) -> set[str]:
    """The pipeline modules a module imports anywhere (top level, TYPE_CHECKING blocks and functions alike)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def test_no_import_cycles_in_pipeline() -> None:
    paths = sorted((ROOT / "pipeline").rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {_module_name(p): _imports(p, modules) for p in paths}
    cycles, index, low, stack, on_stack, counter = [], {}, {}, [], set(), [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def _stem(name: str) -> str:
    """A module name without the endings that only change its form (quantize, quantizer, quantization)."""
    for ending in ("ation", "ion", "ing", "er", "es", "e", "s"):
        if name.endswith(ending) and len(name) - len(ending) >= 4:
            return name[: -len(ending)]
    return name


def test_no_two_modules_whose_names_differ_only_in_form() -> None:
    names = {}
    for path in (ROOT / "pipeline").rglob("*.py"):
        name = path.parent.name if path.name == "__init__.py" else path.stem
        if name in ("pipeline", "__main__"):
            continue
        names.setdefault(_stem(name), set()).add(name)
    assert not {stem: found for stem, found in names.items() if len(found) > 1}


def test_each_package_says_what_lives_there() -> None:
    for init in (ROOT / "pipeline").rglob("__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring.split("\n\n")[0].splitlines()) <= 2, init

"""Generate edge_runtime/tflite/schema_tables.py from TFLite's FlatBuffer schema (schema.fbs).

edge_runtime verifies every .tflite file against TFLite's schema before an interpreter sees it
(edge_runtime/tflite/verifier.py), as the ``Verifier`` that flatc generates for C++ does, without the
flatbuffers package. It walks the file by a compact table of the schema's tables, unions and enums;
this script writes that table. It needs no network: give it a schema.fbs on disk. The one the shipped
table was made from is LiteRT's ``tflite/converter/schema/schema.fbs`` (the schema ai-edge-litert 2.3
reads). ai-edge-litert 2.3's own generated Python (``ai_edge_litert/schema_py_generated.py``) knows two
fields that schema does not (FullyConnectedOptions.quant_spec, BlockwiseQuantization.block_shape), so
``--also`` merges the fields of such a file in: a field either source declares is verified.
tests/test_tflite_verifier.py holds the shipped table to the installed schema_py_generated.py files, so a
drift shows up there:

    python -m benchmarks.tflite_schema path/to/schema.fbs --source "LiteRT <commit>" \
        --also .venv/lib/python3.11/site-packages/ai_edge_litert/schema_py_generated.py \
        > edge_runtime/tflite/schema_tables.py

The parser knows the subset of the FlatBuffers IDL that TFLite's schema uses (tables, enums, unions,
scalar and vector fields, attributes); anything else (structs, vectors of unions, fixed arrays,
includes) stops it with an error rather than being verified wrongly.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

WIDTHS = {
    "bool": 1, "byte": 1, "ubyte": 1, "int8": 1, "uint8": 1,
    "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4,
    "long": 8, "ulong": 8, "int64": 8, "uint64": 8, "double": 8, "float64": 8,
}  # fmt: skip
_DECLARATION = re.compile(r"\b(table|struct|enum|union)\s+(\w+)\s*(?::\s*(\w+))?\s*(\([^)]*\))?\s*\{([^}]*)\}", re.S)
_CLASS = re.compile(r"^class (\w+)\(object\):\n(.*?)(?=^class |\Z)", re.S | re.M)
# flatbuffers' Python number types -> bytes
_FLAGS = {"Bool": 1, "Uint8": 1, "Int8": 1, "Uint16": 2, "Int16": 2, "Int32": 4, "Uint32": 4, "Float32": 4}
_FLAGS.update({"Int64": 8, "Uint64": 8, "Float64": 8})
_FIELD = re.compile(r"^(\w+)\s*:\s*(\[?\s*[\w.]+\s*\]?)\s*(?:=\s*[^(]+?)?\s*(\([^)]*\))?$", re.S)


class SchemaError(Exception):
    """The schema uses something this generator does not know how to verify."""


@dataclass
class Schema:
    tables: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict)  # name -> (field, type, deprecated)
    unions: dict[str, list[str]] = field(default_factory=dict)
    enums: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (underlying type, largest value)
    root: str = ""
    identifier: str = ""


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def _enum(body: str) -> int:
    value, largest = -1, -1
    for item in filter(None, (part.strip() for part in body.split(","))):
        name_value = re.sub(r"\([^)]*\)", "", item).split("=")
        value = int(name_value[1].strip(), 0) if len(name_value) > 1 else value + 1
        largest = max(largest, value)
    return largest


def parse(text: str) -> Schema:
    """The tables, unions, enums, root type and identifier of a .fbs file."""
    text = _strip_comments(text)
    if re.search(r"^\s*include\b", text, re.M):
        raise SchemaError("includes are not supported: give one self-contained schema")
    schema = Schema()
    for kind, name, underlying, _attributes, body in _DECLARATION.findall(text):
        if kind == "struct":
            raise SchemaError(f"struct {name}: structs are not supported")
        if kind == "enum":
            schema.enums[name] = (underlying, _enum(body))
        elif kind == "union":
            members = [re.sub(r"\([^)]*\)", "", m).strip() for m in body.split(",")]
            schema.unions[name] = [m.split(":")[-1].strip() for m in members if m]
        else:
            schema.tables[name] = [_field(name, part.strip()) for part in body.split(";") if part.strip()]
    root = re.search(r"\broot_type\s+(\w+)\s*;", text)
    identifier = re.search(r"\bfile_identifier\s+\"(\w{4})\"\s*;", text)
    if not root or not identifier:
        raise SchemaError("the schema names no root_type or no file_identifier")
    schema.root, schema.identifier = root.group(1), identifier.group(1)
    return schema


def _field(table: str, text: str) -> tuple[str, str, bool]:
    match = _FIELD.match(text)
    if not match:
        raise SchemaError(f"table {table}: cannot read the field {text!r}")
    name, kind, attributes = match.groups()
    return name, re.sub(r"\s+", "", kind), "deprecated" in (attributes or "")


def _kind(schema: Schema, table: str, name: str, kind: str) -> str | int:
    """One field's kind as the verifier reads it (see schema_tables.py's docstring)."""
    vector = kind.startswith("[")
    element = kind.strip("[]").split(".")[-1]
    if element in schema.enums:
        element = schema.enums[element][0]
    if element in WIDTHS:
        return f"[{WIDTHS[element]}" if vector else WIDTHS[element]
    if element == "string":
        return "[s" if vector else "s"
    if element in schema.tables:
        return f"[{element}" if vector else element
    if element in schema.unions and not vector:
        return f"|{element}"
    raise SchemaError(f"table {table}, field {name}: type {kind} is not supported")


Field = tuple[str, "str | int"]  # (name, kind)


def slots(schema: Schema, table: str) -> list[Field]:
    """A table's fields in vtable-slot order; a union takes two slots (its type byte, then its table)."""
    found: list[Field] = []
    for name, kind, deprecated in schema.tables[table]:
        verified = _kind(schema, table, name, kind)
        if isinstance(verified, str) and verified.startswith("|"):
            found.append((f"{name}_type", "-" if deprecated else 1))
        found.append((name, "-" if deprecated else verified))
    return found


def _python_kind(code: str) -> str | int:
    """A field's kind from the accessors flatc generated for it in Python (every method reading its slot)."""
    table = re.search(r"obj = (\w+)\(\)", code)
    flag = re.search(r"number_types\.(\w+)Flags, [ao] \+", code)
    if ".Union(" in code:
        return "|"
    if ".Vector(" in code:
        return "[s" if ".String(" in code else f"[{table.group(1)}" if table else f"[{_FLAGS[flag.group(1)]}"
    if ".String(" in code:
        return "s"
    return table.group(1) if table else _FLAGS[flag.group(1)]


def python_tables(text: str) -> dict[str, dict[int, Field]]:
    """Each table's fields (slot -> (name, kind); a union's table as "|") in flatc's generated Python."""
    tables = {}
    for name, body in _CLASS.findall(text):
        if "flatbuffers.table.Table(buf, pos)" not in body:
            continue
        methods: dict[int, list[str]] = {}
        for method in body.split("\n    def "):
            offset = re.search(r"self\._tab\.Offset\((\d+)\)", method)
            if offset:
                methods.setdefault((int(offset.group(1)) - 4) // 2, []).append(method)
        tables[name] = {
            slot: (re.sub(r"(?<!^)(?=[A-Z])", "_", code[0].split("(")[0]).lower(), _python_kind("\n".join(code)))
            for slot, code in sorted(methods.items())
        }
    return tables


def merged(schema: Schema, table: str, also: dict[str, dict[int, Field]]) -> list[Field]:
    """A table's slots, with the fields only the generated Python declares appended (a gap or a clash: error)."""
    found = slots(schema, table)
    for slot, (name, kind) in also.get(table, {}).items():
        if slot < len(found):
            ours = found[slot][1]
            if ours != "-" and ("|" if isinstance(ours, str) and ours.startswith("|") else ours) != kind:
                raise SchemaError(f"table {table}, slot {slot}: the schema says {ours}, the generated Python {kind}")
        elif slot == len(found) and kind != "|":
            found.append((name, kind))
        else:
            raise SchemaError(f"table {table}, slot {slot}: only the generated Python has it, after a gap")
    return found


def depth(schema: Schema, table: str, path: tuple[str, ...] = ()) -> int:
    """The deepest nesting of tables below `table`; a cycle is refused (the verifier memoises by position)."""
    if table in path:
        raise SchemaError(f"table {table} contains itself ({' -> '.join((*path, table))})")
    children = set()
    for _, kind in slots(schema, table):
        if isinstance(kind, str) and kind not in ("-", "s", "[s") and not kind[1:].isdigit():
            name = kind.lstrip("[|")
            children.update(schema.unions[name] if kind.startswith("|") else [name])
    return 1 + max((depth(schema, child, (*path, table)) for child in children), default=0)


def _wrapped(items: list[str], indent: int) -> list[str]:
    lines, line = [], " " * indent
    for item in items:
        if len(line) + len(item) + 2 > 118 and line.strip():
            lines.append(line.rstrip())
            line = " " * indent
        line += item + ", "
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _string(head: str, text: str) -> list[str]:
    """`head` and a string literal, split over lines in parentheses when it is too long for one."""
    if len(head) + len(text) + 3 <= 118:
        return [f'{head}"{text}",']
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if len(line) + len(word) + 12 > 118:
            lines.append(f'        "{line}"')
            line = ""
        line += word + " "
    lines.append(f'        "{line.rstrip()}"')
    return [f"{head}(", *lines, "    ),"]


def render(schema: Schema, source: str, digest: str, also: dict[str, dict[int, Field]] | None = None) -> str:
    """The Python module: a docstring saying what it is and where it came from, then the tables."""
    unknown = sorted(set(also or {}) - set(schema.tables))
    if unknown:
        raise SchemaError(f"the generated Python has tables the schema lacks: {', '.join(unknown)}")
    out = [
        '"""TFLite\'s FlatBuffer schema as the verifier reads it.\n\n'
        "GENERATED by benchmarks/tflite_schema.py; do not edit, regenerate (that script's docstring says how).\n"
        f"From {source}; the schema's sha256 begins {digest[:16]}.\n\n"
        "TABLES: each table's fields in vtable-slot order. A field is a scalar of 1, 2, 4 or 8 bytes (an int),\n"
        '"s" a string, "Name" a table, "|Name" a union\'s table (its type byte is the slot before), "[n" a vector\n'
        'of n-byte scalars, "[s" a vector of strings, "[Name" a vector of tables, "-" deprecated (never read).\n'
        "FIELDS: each table's field names, space-separated, in the same order (for messages).\n"
        "UNIONS: each union's member tables, type 1 first. ENUMS: each enum's largest value.\n"
        f'DEPTH: the deepest nesting of tables the schema allows (it has no cycle).\n"""\n',
        "# fmt: off",
        f'ROOT = "{schema.root}"',
        f'IDENTIFIER = b"{schema.identifier}"',
        f"DEPTH = {depth(schema, schema.root)}",
        "TABLES: dict[str, tuple[int | str, ...]] = {",
    ]
    for name in sorted(schema.tables):
        kinds = [repr(kind).replace("'", '"') for _, kind in merged(schema, name, also or {})]
        head = f'    "{name}": ('
        body = ", ".join(kinds) + ("," if len(kinds) == 1 else "")
        if len(head) + len(body) + 2 <= 118:
            out.append(f"{head}{body}),")
        else:
            out += [head, *_wrapped(kinds, 8), "    ),"]
    out.append("}")
    out.append("FIELDS: dict[str, str] = {")
    for name in sorted(schema.tables):
        names = " ".join(field for field, _ in merged(schema, name, also or {}))
        if names:
            out += _string(f'    "{name}": ', names)
    out.append("}")
    out.append("UNIONS: dict[str, tuple[str, ...]] = {")
    for name in sorted(schema.unions):
        out += [f'    "{name}": (', *_wrapped([f'"{m}"' for m in schema.unions[name]], 8), "    ),"]
    out.append("}")
    out.append("ENUMS: dict[str, int] = {")
    out += _wrapped([f'"{name}": {largest}' for name, (_, largest) in sorted(schema.enums.items())], 4)
    out += ["}", "# fmt: on", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schema", type=Path, help="TFLite's schema.fbs")
    parser.add_argument("--source", default="", help="where the schema came from, for the generated docstring")
    parser.add_argument("--also", type=Path, help="a schema_py_generated.py whose extra fields are merged in")
    options = parser.parse_args(argv)
    text = options.schema.read_text()
    also = python_tables(options.also.read_text()) if options.also else {}
    source = options.source or str(options.schema)
    if options.also:
        source += f",\nmerged with the fields of {options.also.parent.name}/{options.also.name}"
    try:
        rendered = render(parse(text), source, hashlib.sha256(text.encode()).hexdigest(), also)
    except SchemaError as error:
        print(f"{options.schema}: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())

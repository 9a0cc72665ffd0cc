"""The schema-driven verifier: its table matches the schema the interpreters read, valid models pass, damage
of every kind an interpreter would follow is one ModelError line, and hostile shapes cost little."""

from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
import sys
from pathlib import Path

import flatbuffers  # tests only: edge_runtime verifies without it
import pytest

from benchmarks.tflite_schema import python_tables
from edge_runtime.backends import check_model_bytes, load_interpreter
from edge_runtime.errors import ModelError
from edge_runtime.tflite import verifier
from edge_runtime.tflite.schema_tables import ENUMS, TABLES, UNIONS
from edge_runtime.tflite.structure import TYPE_SIZES
from tests.conftest import CORAL, ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
GENERATED = [
    Path(spec.origin)
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated")
    if (spec := importlib.util.find_spec(name)) is not None and spec.origin
]


@pytest.mark.parametrize("generated", GENERATED, ids=lambda path: path.parent.name)
def test_schema_table_matches_the_schema_the_installed_interpreter_reads(generated: Path) -> None:
    """Every table and field flatc generated for ai-edge-litert (and TensorFlow) is in the table, of the same kind."""
    text = generated.read_text()
    problems = []
    for table, fields in python_tables(text).items():
        ours = TABLES.get(table)
        if ours is None:
            problems.append(f"table {table} is missing")
            continue
        for slot, (name, kind) in fields.items():
            mine = ours[slot] if slot < len(ours) else None
            mine = "|" if isinstance(mine, str) and mine.startswith("|") else mine
            if mine != kind:
                problems.append(f"{table}.{name} (slot {slot}): ours {mine}, generated {kind}")
    for union, members in UNIONS.items():
        found = re.search(rf"^class {union}\(object\):\n    NONE = 0\n((?:    \w+ = \d+\n)*)", text, re.M)
        theirs = re.findall(r"    (\w+) = \d+", found.group(1)) if found else []
        if list(members[: len(theirs)]) != theirs:
            problems.append(f"union {union}: ours {members[:5]}..., generated {theirs[:5]}...")
    assert problems == []
    assert set(range(ENUMS["TensorType"] + 1)) <= set(TYPE_SIZES)  # every tensor type has a known size


def test_generator_reads_tables_unions_and_refuses_what_it_cannot_verify(tmp_path: Path) -> None:
    schema = tmp_path / "schema.fbs"
    schema.write_text(
        'namespace t;\nfile_identifier "TEST";\nenum Kind : short { A, B = 7 }\n'
        "table Leaf { value: int = 3; name: string (deprecated); }\nunion Choice { Leaf }\n"
        "table Root { kind: Kind; leaves: [Leaf]; names: [string]; pick: Choice; data: [ubyte] (force_align: 16); }\n"
        "root_type Root;\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.tflite_schema", str(schema)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    module: dict = {}
    exec(done.stdout, module)
    assert module["TABLES"] == {"Leaf": (4, "-"), "Root": (2, "[Leaf", "[s", 1, "|Choice", "[1")}
    assert module["UNIONS"] == {"Choice": ("Leaf",)} and module["ENUMS"] == {"Kind": 7}
    assert module["FIELDS"]["Root"] == "kind leaves names pick_type pick data" and module["DEPTH"] == 2
    schema.write_text(schema.read_text() + "struct Pair { a: int; b: int; }\n")
    refused = subprocess.run(
        [sys.executable, "-m", "benchmarks.tflite_schema", str(schema)], capture_output=True, text=True, cwd=ROOT
    )
    assert refused.returncode == 1 and "structs are not supported" in refused.stderr


def _valid_models() -> list[Path]:
    found = sorted(SHIPPED.glob("*.tflite"))
    return found + ([CORAL / "mobilenet_v1_0.25_128_quant.tflite"] if CORAL.is_dir() else [])


@pytest.mark.parametrize("path", _valid_models(), ids=lambda path: path.name)
def test_every_valid_model_verifies_and_loads(path: Path) -> None:
    content = path.read_bytes()
    assert 0 < verifier.verify(content) < len(content)  # tables reached: a few per KB, never one per byte
    check_model_bytes(content, path)
    interpreter, _ = load_interpreter(path, content=content)
    assert interpreter.get_input_details()


def test_every_variant_of_a_trained_folder_verifies_and_loads(trained_folder: Path) -> None:
    variants = sorted(trained_folder.glob("model_*.tflite"))
    assert len(variants) >= 5
    for path in variants:
        load_interpreter(path)  # read_model_bytes: verify, semantic checks; then the interpreter


class _Strings(verifier.Verifier):
    """Records where the file's strings are."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.strings: list[int] = []

    def string(self, at: int, what: str) -> None:
        self.strings.append(at)
        super().string(at, what)


def _refusal(content: bytes | bytearray) -> str:
    with pytest.raises(ModelError) as refused:
        check_model_bytes(bytes(content), "model.tflite")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("model.tflite: not a valid TFLite model")
    return message


def test_what_an_interpreter_would_follow_out_of_bounds_is_refused_in_one_line() -> None:
    content = (SHIPPED / "model_int8.tflite").read_bytes()
    # issue 28: one byte changed where the model's offsets and lengths are (byte 1399 then, 1423 in today's
    # regenerated file: a vector length's top byte)
    data = bytearray(content)
    data[1423] = 0x5A
    assert "points outside the file" in _refusal(data)
    walk = _Strings(content)
    walk.verify()
    at = walk.strings[0]
    length = struct.unpack_from("<I", content, at)[0]
    unterminated = bytearray(content)
    unterminated[at + 4 + length] = ord("x")
    assert "no terminating NUL" in _refusal(unterminated)
    too_long = bytearray(content)
    struct.pack_into("<I", too_long, at, 0x7FFFFFFF)
    assert "past the end of the file" in _refusal(too_long)
    root = struct.unpack_from("<I", content, 0)[0]
    misaligned = bytearray(content)
    struct.pack_into("<I", misaligned, 0, root + 1)
    assert "not aligned" in _refusal(misaligned)
    assert "outside the file" in _refusal(content[: len(content) // 3])


def _repeated(builder: flatbuffers.Builder, target: int, count: int) -> int:
    builder.StartVector(4, count, 4)
    for _ in range(count):
        builder.PrependUOffsetTRelative(target)
    return builder.EndVector()


def _fan_out(subgraphs: int, tensors: int) -> bytes:
    """A model whose `subgraphs` entries all name one subgraph whose `tensors` entries all name one tensor."""
    builder = flatbuffers.Builder(0)
    builder.StartObject(0)
    tensor_list = _repeated(builder, builder.EndObject(), tensors)
    builder.StartObject(1)
    builder.PrependUOffsetTRelativeSlot(0, tensor_list, 0)
    graph_list = _repeated(builder, builder.EndObject(), subgraphs)
    builder.StartObject(3)
    builder.PrependUOffsetTRelativeSlot(2, graph_list, 0)
    builder.Finish(builder.EndObject(), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_file_reaching_a_million_tables_through_few_bytes_is_refused_and_walked_once() -> None:
    """flatbuffers' limit (1,000,000 table visits); a table reached again is not walked again."""
    hostile = _fan_out(1001, 1000)
    assert len(hostile) < 10_000
    assert "more than 1,000,000 tables" in _refusal(hostile)
    walk = verifier.Verifier(_fan_out(999, 1000))
    walk.verify()
    assert walk.visits == 1 + 999 + 999 * 1000 and len(walk.seen) == 3  # counted as flatbuffers does

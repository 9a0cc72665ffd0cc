"""What a .tflite file needs from the runtime, read from its bytes (no TensorFlow, no flatbuffers package).

A TFLite model is a FlatBuffer (schema: tensorflow/compiler/mlir/lite/schema/schema.fbs). We
read only what decides where a model runs: its operator codes with their versions, and the
``min_runtime_version`` entry the converter writes into the model's metadata (the newest
TFLite release any of its op versions needs, from TensorFlow's runtime_version.cc table).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError
from .builtin_ops import BUILTIN_OPERATORS
from .structure import Damaged, Reader, Table

MIN_RUNTIME_KEY = "min_runtime_version"
# Model table fields (schema.fbs): operator_codes 1, buffers 4, metadata 6.
_MODEL_OPERATOR_CODES, _MODEL_BUFFERS, _MODEL_METADATA = 1, 4, 6
# OperatorCode: deprecated_builtin_code (int8) 0, custom_code 1, version 2 (default 1), builtin_code (int32) 3.
# Metadata: name 0, buffer 1. Buffer: data 0.


def parse_version(text: str) -> tuple[int, ...]:
    """'2.14.0' -> (2, 14, 0); the numeric prefix of each part, so '2.17.0rc1' -> (2, 17, 0)."""
    parts = []
    for piece in str(text).strip().split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version)


def at_least(installed: str, needed: str) -> bool:
    """True when runtime version `installed` is at least `needed` (missing parts count as 0)."""
    have, need = parse_version(installed), parse_version(needed)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def root(content: bytes, what: str = "the model table") -> Table:
    """The root table of a FlatBuffer, every later read bounds-checked (tflite_check.Table)."""
    reader = Reader(content)
    return Table(reader, reader.u32(0), what)


def byte_vector(table: Table, slot: int, what: str) -> bytes:
    found = table.vector(slot, 1, what)
    return b"" if found is None else table.r.data[found[0] : found[0] + found[1]]


def metadata_buffers(content: bytes) -> dict[str, bytes]:
    """The model's named metadata entries (Model.metadata) and the bytes of each one's buffer."""
    model = root(content)
    buffers = model.tables(_MODEL_BUFFERS, "buffer")
    entries = {}
    for entry in model.tables(_MODEL_METADATA, "metadata entry"):
        index = entry.scalar(1, "I", 0)
        if index < len(buffers):
            entries[entry.string(0, "name") or ""] = byte_vector(buffers[index], 0, "data")
    return entries


def op_name(code: int) -> str:
    return BUILTIN_OPERATORS[code] if 0 <= code < len(BUILTIN_OPERATORS) else f"BUILTIN_{code}"


@dataclass(frozen=True)
class ModelRequirements:
    """What runtime a .tflite file needs: ``ops`` maps each operator to the highest version it uses."""

    min_runtime: str | None
    ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"min_runtime": self.min_runtime, "ops": dict(self.ops)}

    def runs_on(self, runtime: str) -> bool:
        """True when a runtime of this version can run the model (unknown minimum: assume it can)."""
        return self.min_runtime is None or at_least(runtime, self.min_runtime)


def read_requirements(content: bytes, where: str = "model") -> ModelRequirements:
    """Operator versions and min_runtime_version of a TFLite flatbuffer; ModelError if it is not one."""
    try:
        model = root(content)
        ops: dict[str, int] = {}
        for code in model.tables(_MODEL_OPERATOR_CODES, "operator code"):
            builtin = max(code.scalar(0, "b", 0), code.scalar(3, "i", 0))  # as schema_utils' GetBuiltinCode
            name = code.string(1, "custom code") if builtin == 32 else op_name(builtin)  # 32: CUSTOM
            name = name or "CUSTOM"
            ops[name] = max(ops.get(name, 0), code.scalar(2, "i", 1))
        recorded = metadata_buffers(content).get(MIN_RUNTIME_KEY, b"")[:64]
        min_runtime = recorded.split(b"\0", 1)[0].decode("ascii", "replace").strip() or None
    except (Damaged, struct.error, IndexError, UnicodeDecodeError) as error:
        raise ModelError(f"{where}: not a valid TFLite model (truncated or damaged: {error})") from None
    return ModelRequirements(min_runtime, dict(sorted(ops.items())))

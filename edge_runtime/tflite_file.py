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

from ._builtin_ops import BUILTIN_OPERATORS
from .errors import ModelError

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


class _Table:
    """A FlatBuffer table: field lookups by vtable slot, with bounds checks."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position
        vtable = position - self._i32(position)
        self._vtable = vtable
        self._vtable_size = self._u16(vtable)

    def _u16(self, at: int) -> int:
        return struct.unpack_from("<H", self.data, at)[0]

    def _i32(self, at: int) -> int:
        return struct.unpack_from("<i", self.data, at)[0]

    def _u32(self, at: int) -> int:
        return struct.unpack_from("<I", self.data, at)[0]

    def _field(self, slot: int) -> int | None:
        entry = 4 + 2 * slot
        if entry >= self._vtable_size:
            return None
        offset = self._u16(self._vtable + entry)
        return self.position + offset if offset else None

    def scalar(self, slot: int, fmt: str, default: int) -> int:
        at = self._field(slot)
        return default if at is None else struct.unpack_from("<" + fmt, self.data, at)[0]

    def _target(self, slot: int) -> int | None:
        at = self._field(slot)
        return None if at is None else at + self._u32(at)

    def string(self, slot: int) -> str | None:
        at = self._target(slot)
        if at is None:
            return None
        length = self._u32(at)
        return self.data[at + 4 : at + 4 + length].decode("utf-8", "replace")

    def tables(self, slot: int) -> list[_Table]:
        at = self._target(slot)
        if at is None:
            return []
        return [_Table(self.data, at + 4 + 4 * i + self._u32(at + 4 + 4 * i)) for i in range(self._u32(at))]

    def table(self, slot: int) -> _Table | None:
        at = self._target(slot)
        return None if at is None else _Table(self.data, at)

    def floats(self, slot: int) -> list[float]:
        at = self._target(slot)
        if at is None:
            return []
        count = self._u32(at)
        return list(struct.unpack_from(f"<{count}f", self.data, at + 4))

    def byte_vector(self, slot: int) -> bytes:
        at = self._target(slot)
        if at is None:
            return b""
        return self.data[at + 4 : at + 4 + self._u32(at)]


def metadata_buffers(content: bytes) -> dict[str, bytes]:
    """The model's named metadata entries (Model.metadata) and the bytes of each one's buffer."""
    model = _Table(content, struct.unpack_from("<I", content, 0)[0])
    buffers = model.tables(_MODEL_BUFFERS)
    entries = {}
    for entry in model.tables(_MODEL_METADATA):
        index = entry.scalar(1, "I", 0)
        if index < len(buffers):
            entries[entry.string(0) or ""] = buffers[index].byte_vector(0)
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
        model = _Table(content, struct.unpack_from("<I", content, 0)[0])
        ops: dict[str, int] = {}
        for code in model.tables(_MODEL_OPERATOR_CODES):
            builtin = max(code.scalar(0, "b", 0), code.scalar(3, "i", 0))  # as schema_utils' GetBuiltinCode
            name = code.string(1) if builtin == 32 else op_name(builtin)  # 32: CUSTOM
            name = name or "CUSTOM"
            ops[name] = max(ops.get(name, 0), code.scalar(2, "i", 1))
        recorded = metadata_buffers(content).get(MIN_RUNTIME_KEY, b"")
        min_runtime = recorded.split(b"\0", 1)[0].decode("ascii", "replace").strip() or None
    except (struct.error, IndexError, UnicodeDecodeError) as error:
        raise ModelError(f"{where}: not a valid TFLite model (truncated or damaged: {error})") from None
    return ModelRequirements(min_runtime, dict(sorted(ops.items())))

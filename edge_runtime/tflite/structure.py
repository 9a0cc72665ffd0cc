"""A check of a .tflite file before any interpreter sees it: its FlatBuffer verified, then its meaning.

tflite-runtime 2.14 does not verify what it loads: one changed byte can make it crash with a
segmentation fault (issue 28), where ai-edge-litert refuses the same file in one line. First
verifier.py walks every table, vector, string and union the file reaches, by TFLite's schema, as
flatbuffers' generated Verifier does. Then this walks what the schema cannot say and an interpreter
trusts, refusing as one ModelError line:

- operator codes are known kinds; every operator names an operator code that exists;
- every tensor index (operator inputs, outputs, intermediates; subgraph inputs and outputs; signature
  maps) is in range, and so is every buffer index (tensors, metadata) and subgraph index (signatures,
  control flow options);
- tensor types are known, shapes have at most 8 dimensions of sane sizes, and a subgraph's tensors
  need at most 1 GiB at their declared shapes (a mutated batch size of 65,536 asks for gigabytes);
- a constant tensor's buffer holds exactly the bytes its shape and type need (or lies, through
  ``offset``/``size``, inside the file);
- quantization scales are finite and positive, zero points as many as scales, per-channel
  parameters match the size of the quantized dimension;
- names an interpreter's Python API decodes (tensors, subgraphs, signatures) are UTF-8;
- convolution and pooling options a kernel divides by are in range, and so is a quantized
  convolution's requantization scale (operators.py).

Each table is read once and each check made once per position (memoised), so hostile files that
point many offsets at the same table cost no more than honest ones.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from ..errors import ModelError
from .operators import check_inputs, check_options, check_requantization
from .verifier import Damaged, verify

MAX_RANK = 8
MAX_ELEMENTS = 1 << 31  # a tensor larger than 2**31 elements is not an image classifier's
# What an interpreter allocates for a subgraph's tensors at their declared shapes, at most (its arena reuses
# memory, so it needs less); measured: 35 MiB for Keras' MobileNetV2 at 224 px in float32, 0.3 MiB for the cnn.
MAX_WORKING_BYTES = 1 << 30
# TensorType -> bytes per element (None: variable-sized or no data: STRING, RESOURCE, VARIANT; 4-bit: 0.5).
TYPE_SIZES: dict[int, float | None] = {
    0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: None,
    14: None, 15: 4, 16: 2, 17: 0.5, 18: 2, 19: 0.25, 20: 0.5, 21: 1, 22: 1,
}  # fmt: skip
CUSTOM = 32
# BuiltinOptions union members whose tables hold indices the interpreter follows.
IF_OPTIONS, WHILE_OPTIONS, CALL_ONCE_OPTIONS = 92, 93, 103


class Reader:
    """Bounds-checked FlatBuffer access: every read is checked against the file's length."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.cache: dict[int, Table] = {}
        self.done: set[tuple[Any, ...]] = set()
        self.tensor_bytes: dict[int, int] = {}  # a checked tensor's position -> its bytes at run time
        self.constants: set[int] = set()  # positions of tensors whose data is in the file

    def table(self, position: int, what: str) -> Table:
        """The table at `position`, read once however many offsets point at it."""
        found = self.cache.get(position)
        if found is None:
            found = self.cache[position] = Table(self, position, what)
        return found

    def once(self, *key: Any) -> bool:
        """True the first time a check of `key` (a kind of check, a position, its context) is asked for."""
        if key in self.done:
            return False
        self.done.add(key)
        return True

    def need(self, at: int, length: int, what: str) -> None:
        if at < 0 or length < 0 or at + length > self.size:
            raise Damaged(f"{what} lies outside the file (bytes {at}..{at + length} of {self.size})")

    def u8(self, at: int) -> int:
        self.need(at, 1, "a byte")
        return self.data[at]

    def u16(self, at: int) -> int:
        self.need(at, 2, "a 16-bit field")
        return struct.unpack_from("<H", self.data, at)[0]

    def u32(self, at: int) -> int:
        self.need(at, 4, "a 32-bit field")
        return struct.unpack_from("<I", self.data, at)[0]

    def i32(self, at: int) -> int:
        self.need(at, 4, "a 32-bit field")
        return struct.unpack_from("<i", self.data, at)[0]


class Table:
    """One table: its position, its vtable, and checked field access."""

    def __init__(self, reader: Reader, position: int, what: str) -> None:
        self.r, self.position, self.what = reader, position, what
        reader.need(position, 4, what)
        self.vtable = position - reader.i32(position)
        reader.need(self.vtable, 4, f"{what}'s vtable")
        self.vtable_size, self.table_size = reader.u16(self.vtable), reader.u16(self.vtable + 2)
        if self.vtable_size < 4 or self.vtable_size % 2 or self.table_size < 4:
            raise Damaged(f"{what} has a malformed vtable")
        reader.need(self.vtable, self.vtable_size, f"{what}'s vtable")
        reader.need(position, self.table_size, what)

    def field(self, slot: int, width: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vtable_size:
            return None
        offset = self.r.u16(self.vtable + entry)
        if not offset:
            return None
        if offset + width > self.table_size:
            raise Damaged(f"{self.what}: field {slot} runs past the table")
        return self.position + offset

    def scalar(self, slot: int, fmt: str, default: Any) -> Any:
        at = self.field(slot, struct.calcsize(fmt))
        return default if at is None else struct.unpack_from("<" + fmt, self.r.data, at)[0]

    def target(self, slot: int) -> int | None:
        at = self.field(slot, 4)
        return None if at is None else at + self.r.u32(at)

    def vector(self, slot: int, element: int, what: str) -> tuple[int, int] | None:
        """(first element's position, count) of a vector field, checked to fit in the file."""
        at = self.target(slot)
        if at is None:
            return None
        count = self.r.u32(at)
        self.r.need(at + 4, count * element, f"{self.what}'s {what}")
        return at + 4, count

    def ints(self, slot: int, fmt: str, what: str) -> list[Any]:
        found = self.vector(slot, struct.calcsize(fmt), what)
        if found is None:
            return []
        start, count = found
        return list(struct.unpack_from(f"<{count}{fmt}", self.r.data, start))

    def string(self, slot: int, what: str) -> str | None:
        found = self.vector(slot, 1, what)
        if found is None:
            return None
        start, count = found
        return self.r.data[start : start + count].decode("utf-8", "replace")

    def text(self, slot: int, what: str) -> str | None:
        """A string field an interpreter's Python API decodes (names, keys): it must be UTF-8."""
        found = self.vector(slot, 1, what)
        if found is None:
            return None
        try:
            return self.r.data[found[0] : found[0] + found[1]].decode("utf-8")
        except UnicodeDecodeError:
            raise Damaged(f"{self.what}'s {what} is not UTF-8 text") from None

    def tables(self, slot: int, what: str) -> list[Table]:
        found = self.vector(slot, 4, what)
        if found is None:
            return []
        start, count = found
        return [self.r.table(start + 4 * i + self.r.u32(start + 4 * i), f"{what} {i}") for i in range(count)]

    def table(self, slot: int, what: str) -> Table | None:
        at = self.target(slot)
        return None if at is None else self.r.table(at, what)


def _index(value: int, limit: int, what: str, optional: bool = False) -> None:
    if not (-1 if optional else 0) <= value < limit:
        raise Damaged(f"{what} is {value}, but there are only {limit}")


def _quantization(tensor: Table, shape: list[int], what: str) -> None:
    quant = tensor.table(4, f"{what}'s quantization")
    if quant is None:
        return
    for slot, name in ((0, "min"), (1, "max")):
        quant.ints(slot, "f", name)
    scales = quant.ints(2, "f", "scales")
    zero_points = quant.ints(3, "q", "zero points")
    if zero_points and len(zero_points) != len(scales):
        raise Damaged(f"{what} has {len(scales)} quantization scales but {len(zero_points)} zero points")
    if any(not math.isfinite(s) or s < 0 for s in scales):
        raise Damaged(f"{what} has a quantization scale that is negative, infinite or not a number")
    if len(scales) == 1 and scales[0] == 0:  # measured: SIGABRT in both interpreters on an activation's -0.0
        raise Damaged(f"{what} has a quantization scale of 0")
    dimension = quant.scalar(6, "i", 0)
    if len(scales) > 1 and (not 0 <= dimension < len(shape) or shape[dimension] != len(scales)):
        raise Damaged(f"{what} has {len(scales)} per-channel scales for dimension {dimension} of shape {shape}")
    if quant.scalar(4, "B", 0):
        quant.table(5, f"{what}'s quantization details")


def _shape(tensor: Table, what: str) -> list[int]:
    shape = tensor.ints(0, "i", "shape")
    signature = tensor.ints(7, "i", "shape signature")
    if len(shape) > MAX_RANK or len(signature) > MAX_RANK:
        raise Damaged(f"{what} has more than {MAX_RANK} dimensions")
    if any(d < 0 for d in shape) or any(d < -1 for d in signature):
        raise Damaged(f"{what} has a negative dimension {shape}")
    if 0 in shape:  # kernels divide by dimensions (measured: SIGFPE in tflite-runtime 2.14 on a cnn's 0)
        raise Damaged(f"{what} has a dimension of 0 {shape}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise Damaged(f"{what} is impossibly large ({shape})")
    return shape


def _tensor(tensor: Table, buffers: list[Table], model: Reader, what: str) -> int:
    """Check one tensor; return the bytes an interpreter allocates for it at its declared shape (constants: 0)."""
    kind = tensor.scalar(1, "b", 0)
    if kind not in TYPE_SIZES:
        raise Damaged(f"{what} has an unknown type {kind}")
    shape = _shape(tensor, what)
    index = tensor.scalar(2, "I", 0)
    if index:  # buffer 0 is the empty sentinel, allowed even when a model has no buffers (as TFLite does)
        _index(index, len(buffers), f"{what}'s buffer")
    tensor.text(3, "name")  # the interpreter's get_input_details() decodes it
    _quantization(tensor, shape, what)
    sparse = tensor.table(6, f"{what}'s sparsity") is not None
    data = _buffer_bytes(buffers[index], model, f"buffer {index}") if index else 0
    size = TYPE_SIZES[kind]
    if data and size is not None and not sparse:
        needed = math.ceil(math.prod(shape) * size)
        if data != needed:
            raise Damaged(f"{what} needs {needed} bytes of data for shape {shape}, its buffer {index} holds {data}")
    if data:
        model.constants.add(tensor.position)
        return 0
    return math.ceil(math.prod(shape) * (size or 0))


def _buffer_bytes(buffer: Table, model: Reader, what: str) -> int:
    """How many bytes of data a buffer holds (inside the file, or at its offset beyond the FlatBuffer)."""
    found = buffer.vector(0, 1, "data")
    if found is not None and found[1]:
        return found[1]
    offset, size = buffer.scalar(1, "Q", 0), buffer.scalar(2, "Q", 0)
    if size:  # data kept after the FlatBuffer (models over 2 GB), `offset` bytes from the file's start
        model.need(offset, size, f"{what}'s data")
    return size


def _operator(op: Table, codes: list[int], tensors: list[Table], subgraphs: int, what: str) -> None:
    code = op.scalar(0, "I", 0)
    _index(code, len(codes), f"{what}'s operator code")
    check_options(op, codes[code], what)
    for slot, name in ((1, "inputs"), (2, "outputs"), (8, "intermediates")):
        for value in op.ints(slot, "i", name):
            _index(value, len(tensors), f"{what}'s {name[:-1]} tensor", optional=slot == 1)
    check_inputs(op, codes[code], what)
    check_requantization(op, codes[code], tensors, op.r.constants, what)
    op.ints(5, "B", "custom options")
    op.ints(7, "B", "mutating variable inputs")
    kind = op.scalar(3, "B", 0)
    options = op.table(4, f"{what}'s options") if kind else None
    if options is not None and kind in (IF_OPTIONS, WHILE_OPTIONS):
        for slot in (0, 1):
            _index(options.scalar(slot, "i", 0), subgraphs, f"{what}'s subgraph")
    if options is not None and kind == CALL_ONCE_OPTIONS:
        _index(options.scalar(0, "i", 0), subgraphs, f"{what}'s subgraph")
    if op.scalar(11, "B", 0):
        op.table(12, f"{what}'s options")


def _operator_codes(model: Table) -> list[int]:
    """Each operator code's builtin operator (as TFLite's GetBuiltinCode reads it)."""
    builtins = []
    for i, code in enumerate(model.tables(1, "operator code")):
        builtin = max(code.scalar(0, "b", 0), code.scalar(3, "i", 0))
        if builtin < 0:
            raise Damaged(f"operator code {i} is negative ({builtin})")
        name = code.string(1, "custom code")
        if builtin == CUSTOM and not name:
            raise Damaged(f"operator code {i} is a custom operator without a name")
        builtins.append(builtin)
    return builtins


def _subgraph(graph: Table, g: int, counts: tuple[list[int], int], buffers: list[Table], reader: Reader) -> None:
    """One subgraph; `counts`: the model's operator codes' builtin operators and how many subgraphs it has."""
    codes, count = counts
    tensors = graph.tables(0, f"subgraph {g} tensor")
    working = 0
    for i, tensor in enumerate(tensors):
        if tensor.position not in reader.tensor_bytes:  # a hostile file may name one tensor a million times
            reader.tensor_bytes[tensor.position] = _tensor(tensor, buffers, reader, f"subgraph {g} tensor {i}")
        working += reader.tensor_bytes[tensor.position]
    if working > MAX_WORKING_BYTES:
        raise Damaged(
            f"subgraph {g}'s tensors need {working >> 20:,} MiB at their declared shapes, "
            f"more than the {MAX_WORKING_BYTES >> 20:,} MiB a device model may take"
        )
    for slot, name in ((1, "input"), (2, "output")):
        for value in graph.ints(slot, "i", f"{name}s"):
            _index(value, len(tensors), f"subgraph {g}'s {name} tensor")
    for i, op in enumerate(graph.tables(3, f"subgraph {g} operator")):
        if reader.once("operator", op.position, len(tensors)):
            _operator(op, codes, tensors, count, f"subgraph {g} operator {i}")
    graph.text(4, "name")


def _signatures(model: Table, graphs: list[Table]) -> None:
    for i, signature in enumerate(model.tables(7, "signature")):
        graph = signature.scalar(4, "I", 0)
        _index(graph, len(graphs), f"signature {i}'s subgraph")
        tensors = graphs[graph].vector(0, 4, "tensors")
        count = tensors[1] if tensors else 0
        for slot in (0, 1):
            for entry in signature.tables(slot, f"signature {i} tensor"):
                entry.text(0, "name")
                _index(entry.scalar(1, "I", 0), count, f"signature {i}'s tensor")
        signature.text(2, "key")


def check_structure(content: bytes, where: str = "model") -> None:
    """Raise ModelError (one line) when a TFLite FlatBuffer is damaged in a way an interpreter could trip over."""
    reader = Reader(content)
    try:
        verify(content)
        model = Table(reader, reader.u32(0), "the model table")
        buffers = model.tables(4, "buffer")
        graphs = model.tables(2, "subgraph")
        if not graphs:
            raise Damaged("it has no subgraph")
        codes = _operator_codes(model)
        for g, graph in enumerate(graphs):
            if reader.once("subgraph", graph.position):
                _subgraph(graph, g, (codes, len(graphs)), buffers, reader)
        for value in model.ints(5, "i", "metadata buffers"):
            _index(value, len(buffers), "a metadata buffer")
        for i, entry in enumerate(model.tables(6, "metadata entry")):
            entry.string(0, "name")
            _index(entry.scalar(1, "I", 0), len(buffers), f"metadata entry {i}'s buffer")
        _signatures(model, graphs)
        model.string(3, "description")
    except (Damaged, struct.error, OverflowError, ValueError) as error:
        raise ModelError(f"{where}: not a valid TFLite model (damaged: {error})") from None

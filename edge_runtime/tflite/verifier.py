"""Every offset, length, string and union of a .tflite file checked against the file, by TFLite's schema.

This does for a TFLite FlatBuffer what the ``Verifier`` that flatc generates from ``schema.fbs`` does
(and what ai-edge-litert runs before it loads a model; tflite-runtime 2.14 does not, and crashes on
what it would refuse), without the flatbuffers package: it walks every table the file reaches by the
schema table in schema_tables.py (generated from schema.fbs), and refuses

- a root offset, table, vtable, field, vector or string outside the file, or not aligned to its size;
- a vtable of an odd size or smaller than its header, a table shorter than its vtable says, a field
  running past its table;
- an offset of 0 or of 2**31 or more (FlatBuffers' offsets are signed), a vector whose length times
  its element size overflows or runs past the file, a string without its terminating NUL;
- nesting deeper than 64 tables or more than 1,000,000 table visits (flatbuffers' default limits,
  the ones TFLite's own verifier uses).

Union members are verified as the table their type names; a type the schema does not know is left
alone, as flatbuffers does (interpreters ignore it). Deprecated fields are not read. The data of
vectors of scalars (weights) is checked by its length only, never byte by byte, and a table reached
twice by the same type is walked once (memoised by position, its visits counted as often as it is
reached), so the cost is the number of distinct tables and of offsets in vectors, not the file's size.
"""

from __future__ import annotations

import struct

from .schema_tables import FIELDS, IDENTIFIER, ROOT, TABLES, UNIONS

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
MAX_SIZE = (1 << 31) - 1  # FLATBUFFERS_MAX_BUFFER_SIZE: offsets are signed 32-bit
SCALAR, STRING, TABLE, UNION, VECTOR, STRINGS, TABLES_VECTOR = range(7)
_U16, _U32, _I32 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<i")


class Damaged(Exception):
    """Internal: the file breaks the schema; the message says where."""


def _plan(kind: int | str) -> tuple[int, int | str] | None:
    """(what to check, its width or table/union name) for one field kind of schema_tables."""
    if isinstance(kind, int):
        return SCALAR, kind
    if kind == "-":
        return None
    if kind == "s":
        return STRING, 0
    if kind == "[s":
        return STRINGS, 0
    if kind.startswith("|"):
        return UNION, kind[1:]
    if kind.startswith("["):
        return (VECTOR, int(kind[1:])) if kind[1:].isdigit() else (TABLES_VECTOR, kind[1:])
    return TABLE, kind


# table name -> [(vtable entry, slot, check, argument)] for the fields that are verified
PLANS: dict[str, list[tuple[int, int, int, int | str]]] = {
    name: [(4 + 2 * slot, slot, *plan) for slot, kind in enumerate(kinds) if (plan := _plan(kind)) is not None]
    for name, kinds in TABLES.items()
}


def field_name(table: str, slot: int) -> str:
    names = FIELDS.get(table, "").split()
    return f"{table}.{names[slot] if slot < len(names) else f'field {slot}'}"


class Verifier:
    """One walk over one file; `verify` raises Damaged with the first problem found."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.visits = 0
        self.seen: dict[tuple[int, str], int] = {}  # a walked table -> the table visits its walk counted

    def _need(self, at: int, length: int, align: int, what: str) -> None:
        if at < 0 or at + length > self.size:
            raise Damaged(f"{what} lies outside the file (bytes {at}..{at + length} of {self.size})")
        if at % align:
            raise Damaged(f"{what} at byte {at} is not aligned to {align} bytes")

    def offset(self, at: int, what: str) -> int:
        """Where the offset at `at` points (flatbuffers' VerifyOffset)."""
        self._need(at, 4, 4, what)
        value = _U32.unpack_from(self.data, at)[0]
        if value == 0 or value > MAX_SIZE:
            raise Damaged(f"{what} has an impossible offset {value} (at byte {at})")
        if at + value >= self.size:
            raise Damaged(f"{what} points outside the file (byte {at + value} of {self.size})")
        return at + value

    def vector(self, at: int, width: int, what: str) -> tuple[int, int]:
        """(first element's position, count) of the vector at `at`, checked to lie in the file."""
        self._need(at, 4, 4, f"{what}'s length")
        count = _U32.unpack_from(self.data, at)[0]
        if count >= MAX_SIZE // max(width, 1) or at + 4 + count * width > self.size:
            raise Damaged(
                f"{what} claims {count} elements of {width} bytes at byte {at}, past the end of the file ({self.size})"
            )
        return at + 4, count

    def string(self, at: int, what: str) -> None:
        start, count = self.vector(at, 1, what)
        if start + count >= self.size or self.data[start + count] != 0:
            raise Damaged(f"{what} (a string of {count} bytes at byte {at}) has no terminating NUL")

    def table(self, at: int, name: str, depth: int, what: str) -> None:
        """Verify the table of schema type `name` at `at` and everything it reaches."""
        if depth > MAX_DEPTH:
            raise Damaged(f"its tables nest deeper than {MAX_DEPTH}")
        before = self.visits
        self.visits += self.seen.get((at, name), 1)  # as often as flatbuffers would visit it and what it reaches
        if self.visits > MAX_TABLES:
            raise Damaged(f"it reaches more than {MAX_TABLES:,} tables")
        if (at, name) in self.seen:
            return
        self._need(at, 4, 4, what)
        vtable = at - _I32.unpack_from(self.data, at)[0]
        self._need(vtable, 4, 2, f"{what}'s vtable")
        vsize, tsize = _U16.unpack_from(self.data, vtable)[0], _U16.unpack_from(self.data, vtable + 2)[0]
        if vsize < 4 or vsize % 2 or tsize < 4:
            raise Damaged(f"{what} has a malformed vtable (at byte {vtable}: {vsize} bytes, table of {tsize})")
        self._need(vtable, vsize, 2, f"{what}'s vtable")
        self._need(at, tsize, 1, what)
        self.fields(at, name, vtable, vsize, tsize, depth)
        self.seen[(at, name)] = self.visits - before

    def fields(self, at: int, name: str, vtable: int, vsize: int, tsize: int, depth: int) -> None:
        data = self.data
        for entry, slot, check, argument in PLANS[name]:
            if entry >= vsize:
                break
            offset = _U16.unpack_from(data, vtable + entry)[0]
            if not offset:
                continue
            where = at + offset
            if check == SCALAR:
                if offset + argument > tsize:  # type: ignore[operator]
                    raise Damaged(f"{field_name(name, slot)} (at byte {where}) runs past its table")
                self.scalar(where, argument, name, slot)  # type: ignore[arg-type]
                continue
            if offset + 4 > tsize:
                raise Damaged(f"{field_name(name, slot)} (at byte {where}) runs past its table")
            self.follow(self.offset(where, field_name(name, slot)), name, slot, check, argument, depth, at, vtable)

    def follow(
        self, target: int, name: str, slot: int, check: int, argument: int | str, depth: int, at: int, vtable: int
    ) -> None:
        """Verify what one offset field points at."""
        what = field_name(name, slot)
        if check == STRING:
            self.string(target, what)
        elif check == VECTOR:
            self.vector(target, argument, what)  # type: ignore[arg-type]
        elif check == TABLE:
            self.table(target, argument, depth + 1, what)  # type: ignore[arg-type]
        elif check == UNION:
            kind = self.union_type(at, vtable, slot)
            members = UNIONS[argument]  # type: ignore[index]
            if 0 < kind <= len(members):
                self.table(target, members[kind - 1], depth + 1, f"{what} ({members[kind - 1]})")
        else:
            start, count = self.vector(target, 4, what)
            for i in range(count):
                element = self.offset(start + 4 * i, f"{what}[{i}]")
                if check == STRINGS:
                    self.string(element, f"{what}[{i}]")
                else:
                    self.table(element, argument, depth + 1, f"{what}[{i}]")  # type: ignore[arg-type]

    def scalar(self, at: int, width: int, table: str, slot: int) -> None:
        self._need(at, width, width, field_name(table, slot))

    def union_type(self, at: int, vtable: int, slot: int) -> int:
        """The type byte of the union whose table is in `slot` (its type is the slot before; 0 if absent)."""
        offset = _U16.unpack_from(self.data, vtable + 4 + 2 * (slot - 1))[0]
        return self.data[at + offset] if offset else 0

    def verify(self) -> None:
        if self.size > MAX_SIZE:
            raise Damaged(f"it is larger than a FlatBuffer can address ({self.size} bytes)")
        if self.size < 8 or self.data[4:8] != IDENTIFIER:
            raise Damaged(f"it does not carry the {IDENTIFIER.decode()} identifier")
        self.table(self.offset(0, "the root offset"), ROOT, 1, "the model table")


def verify(data: bytes) -> int:
    """Raise Damaged when `data` is not a FlatBuffer TFLite's schema allows; return how many tables it reached."""
    verifier = Verifier(data)
    verifier.verify()
    return verifier.visits

"""Reading files that came from someone else: regular files only, bounded in size, inside their folder.

A model folder is untrusted input (a teammate's, a forum's, a CI artifact), and so is any path a user
names. Every reader goes through here, so that nothing waits forever on a FIFO, reads /dev/zero until
memory runs out, or follows a symlink out of a model folder. The limits (README, "The model folder"):
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from .errors import EdgeRuntimeError

MiB = 1 << 20
METADATA_JSON_BYTES = 4 * MiB  # metadata.json (the shipped one: 12 KB; 10,000 labels: about 300 KB)
RESULTS_JSON_BYTES = 64 * MiB  # drift.json, benchmark.json and the other results the pipeline reads back
JSON_DEPTH = 32  # nesting of any JSON we read (ours nest 6 deep)
LABELS_BYTES = 4 * MiB  # a labels file
MAX_LABELS = 100_000
LABEL_CHARS = 1_000
IMAGE_FILE_BYTES = 256 * MiB  # an image file on disk
MODEL_FILE_BYTES = 2048 * MiB  # a .tflite file (a FlatBuffer cannot address more)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, what: str, error: type[EdgeRuntimeError]) -> int:
    """A descriptor of a regular file; a FIFO, device, socket or folder is refused without blocking on it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not {what}") from None
    except OSError as failure:
        raise error(f"{path}: cannot read {what} ({failure.strerror or failure})") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise error(f"{path}: is {_kind(mode)}, not a regular file; {what} must be a file")
    return descriptor


def read_bounded(path: Path, limit: int, what: str, error: type[EdgeRuntimeError]) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is one `error` line."""
    descriptor = open_regular(Path(path), what, error)
    with os.fdopen(descriptor, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > limit:
            raise error(f"{path}: {what} is {size / MiB:,.1f} MB, over the {limit / MiB:,.0f} MB limit")
        try:
            data = stream.read(limit + 1)
        except OSError as failure:
            raise error(f"{path}: cannot read {what} ({failure.strerror or failure})") from None
    if len(data) > limit:  # it grew while being read
        raise error(f"{path}: {what} is over the {limit / MiB:,.0f} MB limit")
    return data


def inside(folder: Path, name: str, what: str, error: type[EdgeRuntimeError]) -> Path:
    """`folder / name`, refused when it resolves outside the folder (a symlink that leaves it, or `..`)."""
    path = Path(folder) / name
    try:
        real, root = path.resolve(), Path(folder).resolve()
    except (OSError, RuntimeError) as failure:  # a symlink loop
        raise error(f"{path}: cannot resolve {what} ({failure})") from None
    if not real.is_relative_to(root):
        raise error(
            f"{path}: {what} resolves outside its model folder (to {real}); a model folder may only name its own files"
        )
    return path


def zip_directory(stream: BinaryIO) -> tuple[int, int] | None:
    """(members, bytes of the central directory) a zip's end record declares; None when it has none (not a zip).

    zipfile.ZipFile reads the whole central directory into memory and makes an object of every entry (about
    570 bytes each: a million empty members took 570 MB and 8 s) before anyone can count them; checking these
    two numbers first bounds that. They are read by zipfile's own function for it, so that no other parse can
    find an end record other than the one zipfile then trusts.
    """
    try:
        position = stream.tell()
        end = zipfile._EndRecData(stream)  # noqa: SLF001 - the very record ZipFile reads next
        stream.seek(position)
    except (OSError, ValueError, EOFError, struct.error, zipfile.BadZipFile):
        return None
    if end is None:
        return None
    return int(end[zipfile._ECD_ENTRIES_TOTAL]), int(end[zipfile._ECD_SIZE])  # noqa: SLF001


def _depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (iteratively: a hostile file cannot exhaust the stack here)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return deepest


def parse_json(text: str, where: str, what: str, error: type[EdgeRuntimeError]) -> Any:
    """JSON with a nesting bound; every failure is one `error` line naming `where`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as failure:
        raise error(f"{where}: {what} is not valid JSON (line {failure.lineno}: {failure.msg})") from None
    except RecursionError:
        raise error(f"{where}: {what} nests deeper than {JSON_DEPTH} levels") from None
    if _depth(data) > JSON_DEPTH:
        raise error(f"{where}: {what} nests deeper than {JSON_DEPTH} levels")
    return data

"""The read side of the model-folder format: file names, the journal of an unfinished commit, labels, checksums.

A model folder (``models/<name>/``) holds ``model.keras``, ``model_<variant>.tflite`` files, ``labels.txt``
and ``metadata.json``. This module and ``edge_runtime.folder.records`` (the one parser of metadata.json)
are its read side, for the device's predictor and for ``pipeline`` alike; ``pipeline.folder`` and
``pipeline.store.commits`` write it.

A folder is untrusted input: only the files its contract names are read (never a hidden or temporary
file), only regular files inside the folder, each bounded in size (``edge_runtime.safe_files``).

Commits are crash-safe: a writer stages every file as a hidden temporary, writes ``.commit.json`` (the
renames it is about to make, metadata.json last), renames, then deletes the journal. A writer killed
half-way leaves the journal; the next writer rolls it forward, and readers meanwhile follow it
(``FolderView``): the folder reads as the new commit, never as a mix. Readers never wait for writers:
a read that raced a commit in progress is simply read again (``read_consistent``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .. import safe_files
from ..choices import Precision, Target
from ..errors import EdgeRuntimeError, LabelsError, MetadataError, ModelError
from .records import (
    COLORS,
    FILE_NAME,
    METADATA_FILE,
    SCHEMA_VERSION,
    TASK,
    VARIANT_FILE,
    VARIANT_NAME,
    VARIANT_PREFIX,
    VARIANT_SUFFIX,
    FolderMetadata,
    InputSpec,
    SourceRecord,
    TensorQuantization,
    VariantRecord,
    check_header,
    variant_filename,
)

__all__ = [
    "COLORS",
    "JOURNAL_FILE",
    "KERAS_FILE",
    "LABELS_FILE",
    "METADATA_FILE",
    "SCHEMA_VERSION",
    "TASK",
    "VARIANT_PREFIX",
    "VARIANT_SUFFIX",
    "FolderMetadata",
    "FolderView",
    "InputSpec",
    "Journal",
    "SourceRecord",
    "TensorQuantization",
    "VariantRecord",
    "variant_filename",
]

LABELS_FILE = "labels.txt"
KERAS_FILE = "model.keras"
JOURNAL_FILE = ".commit.json"  # an unfinished commit's renames (pipeline.store.commits writes it)
TEMP_MARKER = ".tmp-"  # hidden temporaries are named .<stem>.tmp-<random><suffix>
# When a folder is given instead of a file, the first variant present wins: the
# integer model is the one that is made to ship to a device.
VARIANT_PREFERENCE = (Precision.INT8, Precision.MIXED, Precision.DYNAMIC, Precision.FLOAT16, Precision.FLOAT32)
# The precisions each target is made in. MediaPipe's ImageClassifier takes float32 or uint8 tensors only:
# the TF converter's int8 with uint8 I/O is its integer model (ai-edge-quantizer writes int8 I/O).
TARGET_PRECISIONS = {
    Target.TFLITE: tuple(Precision),
    Target.MEDIAPIPE: (Precision.FLOAT32, Precision.FLOAT16, Precision.INT8),
}
T = TypeVar("T")


def variant_name(precision: str, target: str = Target.TFLITE) -> str:
    """A variant's key in metadata.json: its precision for plain TFLite, e.g. ``mediapipe-int8`` otherwise."""
    return str(precision) if target == Target.TFLITE else f"{target}-{precision}"


def split_variant(name: str) -> tuple[str, str]:
    """(target, precision) of a variant name: 'int8' -> ('tflite', 'int8'); 'mediapipe-int8' -> ('mediapipe', ...)."""
    target, _, precision = str(name).rpartition("-")
    if target in Target.values() and precision in Precision.values():
        return target, precision
    return str(Target.TFLITE), str(name)


# Every variant a folder can hold, in the order folders, tables and reports list them.
VARIANT_NAMES = tuple(variant_name(p, t) for t, precisions in TARGET_PRECISIONS.items() for p in precisions)


def is_temporary(name: str) -> bool:
    """True for the hidden temporaries writers stage files in: never a candidate for anything."""
    return name.startswith(".") and TEMP_MARKER in name


# --- the journal of an unfinished commit ------------------------------------------------------------


@dataclass(frozen=True)
class Journal:
    """An unfinished commit: (temporary, final name) renames in order, metadata.json last, and files it removes."""

    renames: tuple[tuple[str, str], ...]
    removes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"schema": 1, "renames": [list(pair) for pair in self.renames], "removes": list(self.removes)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Journal:
        problem = MetadataError(
            f"{where}: the journal of an unfinished commit is damaged; remove it and re-run the stage"
        )
        if not isinstance(data, dict) or not isinstance(data.get("renames"), list):
            raise problem
        renames, removes = [], data.get("removes", [])
        for pair in data["renames"]:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise problem
            if not is_temporary(pair[0]) or "/" in pair[0] or not FILE_NAME.match(pair[1]):
                raise problem
            renames.append((pair[0], pair[1]))
        if not isinstance(removes, list) or not all(isinstance(n, str) and FILE_NAME.match(n) for n in removes):
            raise problem
        return cls(tuple(renames), tuple(removes))


def read_journal(folder: Path) -> Journal | None:
    """The folder's unfinished commit, if a writer was cut off in one (or is in one right now)."""
    path = Path(folder) / JOURNAL_FILE
    if not path.exists():
        return None
    try:
        data = safe_files.read_bounded(path, safe_files.MiB, "journal", MetadataError)
    except MetadataError as error:
        if "not found" in str(error):
            return None  # the commit just finished
        raise
    return Journal.from_dict(
        safe_files.parse_json(data.decode("utf-8", "replace"), str(path), "journal", MetadataError), str(path)
    )


class FolderView:
    """The files of a model folder as its last commit left them, following an unfinished commit's journal."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        journal = read_journal(self.folder)
        self.journal = journal is not None
        self.pending: dict[str, Path] = {}
        self.removed: set[str] = set()
        if journal is not None:
            for temp, final in journal.renames:
                if (self.folder / temp).is_file():
                    self.pending[final] = self.folder / temp
            self.removed = set(journal.removes)

    def path(self, name: str) -> Path | None:
        """Where `name`'s committed content is now; None when the commit removes it."""
        if name in self.pending:
            return self.pending[name]
        if name in self.removed:
            return None
        return self.folder / name

    def exists(self, name: str) -> bool:
        path = self.path(name)
        return path is not None and path.is_file()

    def read(self, name: str, limit: int, what: str, error: type[EdgeRuntimeError]) -> bytes:
        """The bytes of one of the folder's own files: a regular file inside the folder, at most `limit` bytes."""
        path = self.path(name)
        if path is None:
            raise error(f"{self.folder / name}: {what} not found")
        safe_files.inside(self.folder, path.name, what, error)
        return safe_files.read_bounded(path, limit, what, error)


def _state(folder: Path) -> tuple[Any, ...]:
    """What changes when a commit runs: metadata.json's identity and the journal's presence."""
    found = []
    for name in (METADATA_FILE, JOURNAL_FILE):
        try:
            info = (Path(folder) / name).stat()
            found.append((info.st_ino, info.st_mtime_ns, info.st_size))
        except OSError:
            found.append(None)
    return tuple(found)


def read_consistent(folder: Path, read: Callable[[FolderView], T], attempts: int = 5) -> T:
    """`read(view)` of a folder no commit changed meanwhile; a read that raced a commit is made again."""
    failure: EdgeRuntimeError | None = None
    for attempt in range(attempts):
        before = _state(folder)
        view = FolderView(folder)
        try:
            result = read(view)
        except EdgeRuntimeError as error:
            if _state(folder) == before and not view.journal:
                raise
            failure = error
        else:
            if _state(folder) == before:
                return result
        time.sleep(0.02 * (attempt + 1))
    raise failure or MetadataError(f"{folder}: kept changing while it was read; is another process writing it?")


# --- reading ----------------------------------------------------------------------------------------


def read_json_object(path: Path, what: str, limit: int = safe_files.METADATA_JSON_BYTES) -> dict[str, Any]:
    """Read a JSON file that must hold an object: bounded, regular files only, one-line errors."""
    data = safe_files.read_bounded(Path(path), limit, what, MetadataError)
    return _json_object(data, path, what)


def _json_object(data: bytes, path: Path | str, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetadataError(f"{path}: {what} is not UTF-8 text ({error.reason})") from None
    value = safe_files.parse_json(text, str(path), what, MetadataError)
    if not isinstance(value, dict):
        raise MetadataError(f"{path}: {what} must hold a JSON object")
    return value


def parse_metadata(data: bytes, where: Path | str) -> FolderMetadata:
    """metadata.json's bytes, parsed and every value checked."""
    return FolderMetadata.from_dict(_json_object(data, where, "metadata.json"), str(where))


def metadata_bytes(view: FolderView) -> bytes:
    return view.read(METADATA_FILE, safe_files.METADATA_JSON_BYTES, "metadata.json", MetadataError)


def metadata_from(view: FolderView) -> FolderMetadata:
    """The folder's metadata.json (as its last commit wrote it), parsed and checked."""
    return parse_metadata(metadata_bytes(view), view.folder / METADATA_FILE)


def load_metadata(folder: Path) -> FolderMetadata:
    """metadata.json of a model folder as typed records; every problem is a one-line MetadataError."""
    return read_consistent(Path(folder), metadata_from)


def read_metadata(folder: Path) -> dict[str, Any]:
    """metadata.json of a model folder as checked JSON (every value validated, then returned as written)."""

    def read(view: FolderView) -> dict[str, Any]:
        where = view.folder / METADATA_FILE
        data = _json_object(
            view.read(METADATA_FILE, safe_files.METADATA_JSON_BYTES, "metadata.json", MetadataError),
            where,
            "metadata.json",
        )
        check_header(data, str(where))
        FolderMetadata.from_dict(data, str(where))
        return data

    return read_consistent(Path(folder), read)


def parse_labels(text: str, where: str = "labels") -> list[str]:
    """One label a line, trailing blank lines dropped: labels.txt and the labels file inside a .tflite."""
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if len(labels) > safe_files.MAX_LABELS:
        raise LabelsError(f"{where}: {len(labels):,} labels, over the limit of {safe_files.MAX_LABELS:,}")
    long = next((label for label in labels if len(label) > safe_files.LABEL_CHARS), None)
    if long is not None:
        raise LabelsError(
            f"{where}: a label is {len(long):,} characters long, over the limit of {safe_files.LABEL_CHARS:,}"
        )
    return labels


def decode_labels(data: bytes, where: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")  # a leading BOM (Notepad writes one) is not part of a label
    except UnicodeDecodeError as error:
        raise LabelsError(f"{where}: labels are not UTF-8 text ({error.reason})") from None
    labels = parse_labels(text, where)
    if not labels:
        raise LabelsError(f"{where}: labels file is empty")
    return labels


def read_labels(path: Path) -> list[str]:
    """A labels file: one label a line (as TensorFlow's label_image expects); a regular file, bounded."""
    data = safe_files.read_bounded(Path(path), safe_files.LABELS_BYTES, "labels file", LabelsError)
    return decode_labels(data, str(path))


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large models do not need to fit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_content(content: bytes, path: Path, record: VariantRecord | None) -> None:
    """Raise MetadataError when a file's bytes do not match the sha256 recorded in metadata.json."""
    if record is not None and hashlib.sha256(content).hexdigest() != record.sha256:
        raise MetadataError(
            f"{path}: contents do not match the sha256 in {METADATA_FILE} (damaged or replaced "
            f"file); copy the folder again or re-run `edge-pipeline convert`"
        )


def variant_candidates(view: FolderView, metadata: FolderMetadata | None) -> list[str]:
    """A folder's model files, best first: the recommended variant, then by preference, then the rest.

    Only the contract's names count (``model_<variant>.tflite``), regular files inside the folder; hidden
    files and the temporaries of a commit in progress are never candidates.
    """
    recorded = {v.file for v in metadata.variants.values()} if metadata else set()
    preferred = [metadata.recommended] if metadata and metadata.recommended else []
    preferred.extend(VARIANT_PREFERENCE)
    names = [variant_filename(p) for p in dict.fromkeys(preferred) if VARIANT_NAME.match(str(p))]
    names += sorted(recorded)
    try:
        present = sorted(entry.name for entry in os.scandir(view.folder) if VARIANT_FILE.match(entry.name))
    except OSError as error:
        raise ModelError(f"{view.folder}: cannot list the folder ({error.strerror or error})") from None
    ordered = []
    for name in dict.fromkeys([*names, *present]):
        path = view.path(name)
        if path is not None and path.is_file():
            safe_files.inside(view.folder, path.name, "model file", ModelError)  # a symlink out: refused, loudly
            ordered.append(name)
    return ordered

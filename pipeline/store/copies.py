"""A copy of a model folder holds its contract and nothing else: metadata.json and the files it records.

`shutil.copytree` copied whatever a folder held and followed its symlinks: a link to a host file arrived as a
regular file, a link to `/` would have copied the disk. Here only the names metadata.json records are copied
(its variants and files, as deploy sends them: pipeline.devices.deploy), each a regular file inside the folder
(a symlink that resolves outside it is refused in one line, as every reader refuses it) whose sha256 matches
its record; a sub-folder of images (`samples/`) is copied file by file, its symlinks and anything not a
regular image file skipped with one line each. Never a symlink followed, never anything else the folder holds.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime import safe_files
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.folder import reader as layout
from edge_runtime.folder.reader import METADATA_FILE
from edge_runtime.images import is_image_file

from ..errors import FolderError

CHUNK = 1 << 20


@dataclass
class FolderCopy:
    """What a copy took (names relative to the folder) and what it left, one line each."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _copy_checked(source: Path, target: Path, sha256: str) -> None:
    """Copy one regular file (opened without following it anywhere a FIFO or device would block), checking its
    sha256 as it streams through; the copy is removed when it does not match."""
    descriptor = safe_files.open_regular(source, "file", FolderError)
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "rb") as stream, open(target, "wb") as out:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        target.unlink()
        raise FolderError(f"{source}: does not match its sha256 in metadata.json (damaged or replaced); not copied")


def _contract(view: layout.FolderView, target: Path, keep: Callable[[str], bool]) -> list[str]:
    """Copy metadata.json and every file it records (those `keep` wants) from one consistent view of the folder."""
    raw = layout.metadata_bytes(view)
    metadata = layout.parse_metadata(raw, view.folder / METADATA_FILE)
    recorded = {name: record["sha256"] for name, record in metadata.files.items()}
    recorded.update({variant.file: variant.sha256 for variant in metadata.variants.values()})
    copied = []
    for name in sorted(name for name in recorded if keep(name)):
        path = view.path(name)
        if path is None or not os.path.lexists(path):
            continue  # recorded but absent: the reader of the copy says so, as it would of the folder
        safe_files.inside(view.folder, path.name, name, FolderError)  # a symlink out of the folder: refused
        _copy_checked(path, target / name, recorded[name])
        copied.append(name)
    (target / METADATA_FILE).write_bytes(raw)
    return [*copied, METADATA_FILE]


def copy_folder(source: Path, target: Path, keep: Callable[[str], bool] = lambda name: True) -> FolderCopy:
    """Copy model folder `source` into `target` (created): its contract only, each file checked. One-line
    FolderError when a file it records is a symlink out, not a regular file, or does not match its sha256."""
    Path(target).mkdir(parents=True, exist_ok=True)
    try:
        copied = layout.read_consistent(Path(source), lambda view: _contract(view, Path(target), keep))
    except EdgeRuntimeError as error:
        raise FolderError(str(error)) from None
    return FolderCopy(copied)


def copy_images(source: Path, target: Path, prefix: str) -> FolderCopy:
    """Copy the regular image files directly in folder `source` (not a symlink itself) into `target`; symlinks,
    sub-folders, devices and other files are skipped with one line each. Names are reported as `prefix/name`."""
    result = FolderCopy()
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        return result
    if not stat.S_ISDIR(info.st_mode):
        result.skipped.append(f"{prefix}: skipped, a symlink or a file, not a folder")
        return result
    Path(target).mkdir(parents=True, exist_ok=True)
    for entry in sorted(os.scandir(source), key=lambda entry: entry.name):
        name = f"{prefix}/{entry.name}"
        if entry.is_symlink():
            result.skipped.append(f"{name}: skipped, a symlink")
        elif not entry.is_file(follow_symlinks=False) or not is_image_file(Path(entry.name)):
            result.skipped.append(f"{name}: skipped, not an image file")
        elif entry.stat(follow_symlinks=False).st_size > safe_files.IMAGE_FILE_BYTES:
            result.skipped.append(f"{name}: skipped, over {safe_files.IMAGE_FILE_BYTES >> 20} MB")
        else:
            data = safe_files.read_bounded(Path(entry.path), safe_files.IMAGE_FILE_BYTES, "image", FolderError)
            (Path(target) / entry.name).write_bytes(data)
            result.copied.append(name)
    return result

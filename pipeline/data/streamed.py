"""Image folders larger than memory: decoded once at the model's size into a file, then read a batch at a time.

Each image is decoded by the device's own code path (`edge_runtime.images`, Pillow), in parallel, and
appended as raw uint8 rows (height x width x channels) to one file; unreadable files are skipped and
counted before any split, so the splits are exactly those of the in-memory path. Training reads rows
with `os.pread` through `tf.data` (`tf_data.tf_dataset`): memory holds a batch and the index order,
not the folder, and the page cache (not counted in a process's memory) keeps hot rows fast. Reading
with `pread` rather than `mmap` matters: mapped pages count in the process's resident memory once touched.

The file lives in a temporary folder for the process, or in `--cache DIR`, named by a hash of the
folder's listing (names, sizes, modification times) and the model's input, so a later run or stage on
the same files and size reuses it and a changed folder decodes anew.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec

from ..errors import DataError

CHUNK_ROWS = 256  # images decoded in flight at once


class DiskImages:
    """uint8 images (N, height, width, channels) stored as raw rows in a file; indexing reads only those rows.

    `images[i]`, `images[a:b]` and `images[index_array]` return numpy arrays; `subset` returns a lazy view.
    """

    def __init__(self, path: Path, image_shape: tuple[int, int, int], rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.row_bytes = int(np.prod(self.image_shape))
        total = self.path.stat().st_size // self.row_bytes
        self.rows = np.arange(total, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        self.dtype = np.dtype(np.uint8)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.image_shape)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, indices: Any) -> DiskImages:
        """A view of some of these images, nothing read."""
        return DiskImages(self.path, self.image_shape, self.rows[indices])

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Images at file rows `rows` (in that order), read with pread."""
        out = np.empty((len(rows), *self.image_shape), np.uint8)
        flat = out.reshape(len(rows), -1)
        with open(self.path, "rb", buffering=0) as stream:
            descriptor = stream.fileno()
            size = self.row_bytes
            for position, row in enumerate(np.asarray(rows, dtype=np.int64)):
                flat[position] = np.frombuffer(os.pread(descriptor, size, int(row) * size), np.uint8)
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read_rows(self.rows[[int(key)]])[0]
        return self.read_rows(self.rows[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.read_rows(self.rows)
        return whole if dtype is None else whole.astype(dtype)


def take(images: np.ndarray | DiskImages, indices: Any) -> np.ndarray | DiskImages:
    """Some images of a split: a view for images on disk, a copy for images in memory."""
    return images.subset(indices) if isinstance(images, DiskImages) else images[indices]


_SESSION_DIRS: list[str] = []


def _session_dir() -> Path:
    """A temporary folder for this process's decoded folders, removed at exit."""
    if not _SESSION_DIRS:
        _SESSION_DIRS.append(tempfile.mkdtemp(prefix="edge-pipeline-images-"))
        atexit.register(shutil.rmtree, _SESSION_DIRS[0], True)
    return Path(_SESSION_DIRS[0])


def cache_key(jobs: list[tuple[Path, int]], root: Path, spec: InputSpec) -> str:
    digest = hashlib.sha256(json.dumps([str(root.resolve()), spec.to_dict()], sort_keys=True).encode())
    for path, label in jobs:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _check_space(where: Path, needed: int) -> None:
    free = shutil.disk_usage(where).free
    if needed > free:
        raise DataError(
            f"{where}: decoding the folder at the model's size needs {needed / 1e9:.1f} GB there, {free / 1e9:.1f} GB "
            "free; pass --cache DIR on a disk with room"
        )


def decoded_in_order(jobs: list[tuple[Path, int]], decode: Any) -> Iterator[tuple[tuple[Path, int], Any]]:
    """Each job with its decoded image (or error text), in order, at most CHUNK_ROWS in memory."""
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for start in range(0, len(jobs), CHUNK_ROWS):
            chunk = jobs[start : start + CHUNK_ROWS]
            yield from zip(chunk, pool.map(lambda job: decode(job[0]), chunk), strict=True)


def write_decoded(
    jobs: list[tuple[Path, int]], spec: InputSpec, decode: Any, target: Path, progress: Any = None
) -> tuple[list[int], list[int], list[str]]:
    """Decode every job into raw rows at `target` (written to a temporary name, then renamed).

    Returns the indices of the jobs written (in row order), of the jobs skipped, and the skip messages.
    """
    _check_space(target.parent, len(jobs) * spec.height * spec.width * spec.channels)
    written, skipped, problems = [], [], []
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with open(partial, "wb") as stream:
            for done, (_, result) in enumerate(decoded_in_order(jobs, decode), start=1):
                index = done - 1
                if isinstance(result, str):
                    skipped.append(index)
                    problems.append(result)
                else:
                    stream.write(np.ascontiguousarray(result, np.uint8).tobytes())
                    written.append(index)
                if progress is not None:
                    progress(done, len(jobs))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written, skipped, problems


def decoded_folder(
    jobs: list[tuple[Path, int]], root: Path, spec: InputSpec, decode: Any, cache: Path | None, progress: Any = None
) -> tuple[DiskImages, list[int], list[int], list[str]]:
    """The folder's images on disk (reused from `cache` when the same files were decoded at the same size)."""
    where = Path(cache) if cache is not None else _session_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"--cache {where}: cannot create the folder ({error.strerror or error})") from None
    key = cache_key(jobs, root, spec)
    rows_file, index_file = where / f"{key}.u8", where / f"{key}.json"
    if rows_file.is_file() and index_file.is_file():
        index = json.loads(index_file.read_text())
        shape = (spec.height, spec.width, spec.channels)
        return DiskImages(rows_file, shape), index["written"], index["skipped"], index["problems"]
    written, skipped, problems = write_decoded(jobs, spec, decode, rows_file, progress)
    partial = index_file.with_name(f".{index_file.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps({"written": written, "skipped": skipped, "problems": problems}))
    partial.replace(index_file)
    return DiskImages(rows_file, (spec.height, spec.width, spec.channels)), written, skipped, problems

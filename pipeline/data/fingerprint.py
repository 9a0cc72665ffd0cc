"""Which data a stage consumed (cheaply: a named dataset by its name, a folder by its listing), and which test
images an evaluation used (test_fingerprint, what `compare` matches folders by).

A folder's fingerprint hashes every image's path, size and modification time (a listing, not the pixels:
~1 s for 100,000 files); adding, removing, replacing or touching an image changes it. Recorded by the
stages (metadata.json's `stages`) and by training's checkpoint, so neither is trusted past a change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.folder.reader import sha256_file

from .dataset import DataConfig, Dataset


def folder_listing(root: Path) -> dict[str, Any]:
    """{"listing": sha256 of (path, bytes, mtime) of every visible file under `root`, "files": how many}."""
    digest, count = hashlib.sha256(), 0
    for directory, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(directory, name)
            try:
                status = path.stat()
            except OSError:
                continue
            relative = path.relative_to(root).as_posix()
            digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
            count += 1
    return {"listing": digest.hexdigest(), "files": count}


def data_identity(config: DataConfig) -> dict[str, Any]:
    """What the data is, independent of where it is now: the named dataset, or the folder's listing."""
    split = {"validation_split": config.validation_split, "seed": config.seed, "limit": config.limit}
    if config.data_path is None:
        return {"dataset": config.dataset, **split}
    if not Path(config.data_path).is_dir():
        return {"folder": "missing", **split}
    return {**folder_listing(Path(config.data_path)), "test_split": config.test_split, **split}


def test_fingerprint(dataset: Dataset) -> str:
    """Which test images, in which order, with which labels: equal for two models tested on the same images,
    whatever size each model resizes them to (an image folder's test files by path and content; a named
    dataset's test set by its name and labels)."""
    digest = hashlib.sha256()
    if dataset.files is not None:
        root = Path(dataset.source)
        for name in dataset.files.get("test", []):
            try:
                content = sha256_file(root / name)
            except OSError:
                content = "missing"
            digest.update(f"{name}\0{content}\n".encode("utf-8", "surrogateescape"))
    else:
        digest.update(f"{dataset.name}\0test\0{len(dataset.test)}\n".encode())
    digest.update(np.asarray(dataset.test.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()

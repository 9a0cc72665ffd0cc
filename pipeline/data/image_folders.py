"""Image folders: one sub-folder per class, decoded with the device's own code path, bad files skipped."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import ImageError
from edge_runtime.folder.reader import InputSpec
from edge_runtime.images import draft_mode, is_image_file, open_image, prepare_pixels
from edge_runtime.text import printable

from ..errors import DataError
from .named import NativeFormat
from .streamed import DiskImages, decoded_folder, decoded_in_order

Progress = Callable[[int, int], None]
MAX_BAD_FRACTION = 0.25
PEEK_IMAGES = 24


# --- image folders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderListing:
    """Class names and the candidate files of each class, in a stable order."""

    root: Path
    classes: list[str]
    files: list[list[Path]]


def list_folder(root: Path) -> FolderListing:
    """Find class sub-folders and their files; structural problems are one-line errors."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder; --data wants a folder with one sub-folder per class")
    if not root.is_dir():
        raise DataError(f"{root}: is a file; --data wants a folder with one sub-folder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"{root}: has no class sub-folders; put the images of each class in their own folder ({root}/cat/*.jpg, "
            f"{root}/dog/*.jpg, ...)"
        )
    if len(class_dirs) < 2:
        raise DataError(f"{root}: has one class ({class_dirs[0].name}); a classifier needs at least two class folders")
    files = []
    for class_dir in class_dirs:
        try:  # a class folder may be a link anywhere (to / it met /proc's unreadable links)
            found = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        except OSError as error:
            where = f": {error.filename}" if error.filename else ""
            raise DataError(f"{class_dir}: cannot be listed ({error.strerror or error}{where})") from None
        if not found:
            raise DataError(f"{class_dir}: class folder has no images; add some or remove the folder")
        files.append(found)
    return FolderListing(root, [d.name for d in class_dirs], files)


def peek_folder(listing: FolderListing) -> NativeFormat:
    """Typical size and colour of a folder's images, from the headers of a few of them."""
    sizes, gray, first_error = [], 0, "no file has an image's extension"
    sample = [f for files in listing.files for f in files[: max(1, PEEK_IMAGES // len(listing.files))]]
    for path in sample:
        if not is_image_file(path):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from PIL import Image

                with Image.open(path) as image:
                    sizes.append(image.size)
                    gray += image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        except Exception as error:  # noqa: BLE001 - a bad file is reported when the folder is loaded
            if not sizes and first_error.startswith("no file"):
                first_error = f"{relative_name(listing, path)}: {printable(str(error))[:160]}"
            continue
    if not sizes:
        raise DataError(f"{listing.root}: none of the first {len(sample)} files is a readable image ({first_error})")
    width = int(np.median([s[0] for s in sizes]))
    height = int(np.median([s[1] for s in sizes]))
    return NativeFormat(height, width, 1 if gray == len(sizes) else 3)


def _decode(path: Path, spec: InputSpec) -> np.ndarray | str:
    try:
        return prepare_pixels(open_image(path, (spec.width, spec.height), draft_mode(spec)), spec, invert=False)
    except ImageError as error:
        return str(error)


def relative_name(listing: FolderListing, path: Path) -> str:
    """How split.json names a file: its path below the folder, with '/' (class folder first)."""
    return path.relative_to(listing.root).as_posix()


@dataclass
class Decoded:
    """A folder's readable images at the model's size, their labels and names, and the skipped files."""

    images: np.ndarray | DiskImages  # in memory, or on disk (streamed)
    labels: np.ndarray
    names: list[str]
    skipped: list[str]  # one message per unreadable file
    skipped_names: list[str]


def _jobs(listing: FolderListing, only: set[str] | None) -> list[tuple[Path, int]]:
    return [
        (path, label)
        for label, files in enumerate(listing.files)
        for path in files
        if only is None or relative_name(listing, path) in only
    ]


def load_folder(
    listing: FolderListing,
    spec: InputSpec,
    progress: Progress | None = None,
    only: set[str] | None = None,
    stream: bool = False,
    cache: Path | None = None,
) -> Decoded:
    """Decode every file (or those named in `only`) at the model's size, the device's code path; bad files are skipped.

    `stream`: into a file on disk (`cache`, else a temporary folder) instead of memory. Raises DataError when
    too many files are bad or a class is left with none.
    """
    jobs = _jobs(listing, only)
    if stream:
        images, written, skipped_at, problems = _streamed(listing, jobs, spec, cache, progress)
    else:
        decoded, written, skipped_at, problems = [], [], [], []
        for done, (_, result) in enumerate(decoded_in_order(jobs, lambda path: _decode(path, spec)), start=1):
            if isinstance(result, str):
                skipped_at.append(done - 1)
                problems.append(result)
            else:
                decoded.append(result)
                written.append(done - 1)
            if progress is not None:
                progress(done, len(jobs))
        images = np.stack(decoded) if decoded else np.zeros((0, spec.height, spec.width, spec.channels), np.uint8)
    return _checked(listing, jobs, images, written, skipped_at, problems)


def _streamed(
    listing: FolderListing, jobs: list[tuple[Path, int]], spec: InputSpec, cache: Path | None, progress: Progress | None
) -> tuple[DiskImages, list[int], list[int], list[str]]:
    """The whole folder decoded on disk (so every stage shares one cached file), narrowed to `jobs`."""
    every = _jobs(listing, None)
    images, written, skipped_at, problems = decoded_folder(
        every, listing.root, spec, lambda path: _decode(path, spec), cache, progress
    )
    if len(jobs) == len(every):
        return images, written, skipped_at, problems
    position = {path: index for index, (path, _) in enumerate(jobs)}
    keep = [row for row, job in enumerate(written) if every[job][0] in position]
    bad = [
        (position[every[job][0]], text)
        for job, text in zip(skipped_at, problems, strict=True)
        if every[job][0] in position
    ]
    return (
        images.subset(keep),
        [position[every[written[row]][0]] for row in keep],
        [index for index, _ in bad],
        [text for _, text in bad],
    )


def _checked(
    listing: FolderListing,
    jobs: list[tuple[Path, int]],
    images: np.ndarray | DiskImages,
    written: list[int],
    skipped_at: list[int],
    problems: list[str],
) -> Decoded:
    if len(problems) > MAX_BAD_FRACTION * len(jobs):
        raise DataError(
            f"{listing.root}: {len(problems)} of {len(jobs)} files are not readable images "
            f"({name_all(problems, listing.root)}); fix or remove them"
        )
    labels = np.asarray([jobs[i][1] for i in written], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(listing.classes))
    wanted = np.bincount(np.asarray([label for _, label in jobs], dtype=np.int64), minlength=len(listing.classes))
    for name, count, asked in zip(listing.classes, counts, wanted, strict=True):
        if count == 0 and asked:
            raise DataError(f"{listing.root / name}: none of its files is a readable image")
    names = [relative_name(listing, jobs[i][0]) for i in written]
    return Decoded(images, labels, names, problems, [relative_name(listing, jobs[i][0]) for i in skipped_at])


def skipped_line(problems: list[str], root: Path) -> str:
    """What train and import say of the files they could not read (split.json lists them as unused)."""
    return f"skipped {len(problems)} unreadable file(s): {name_all(problems, root)}"


def name_all(problems: list[str], root: Path, shown: int = 5) -> str:
    """Every unreadable file, named: inline when few, else the first few and a file listing them all."""
    if len(problems) <= shown:
        return "; ".join(problems)
    listing = Path(os.environ.get("TMPDIR", "/tmp")) / f"edge-pipeline-unreadable-{root.name}.txt"
    try:
        listing.write_text("\n".join(problems) + "\n", encoding="utf-8")
        where = f"all {len(problems)} listed in {listing}"
    except OSError:
        where = f"{len(problems) - shown} more"
    return "; ".join(problems[:shown]) + f"; {where}"

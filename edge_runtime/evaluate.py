"""`edge-runtime evaluate MODEL DIR`: top-1 accuracy of a model on a folder of labelled images, on the device.

DIR holds one sub-folder per class, named after one of the model's labels (from metadata.json, the file's own
metadata or --labels); a label a folder name cannot hold matches loosely (`T-shirt/top` as `t-shirt_top`:
case, and runs of anything but letters and digits, aside). A sub-folder that is no label is left out, in one
line. Images are read with `predict`'s own code, so the accuracy equals `edge-pipeline evaluate`'s for the
same variant and images; numpy, Pillow and the interpreter only, one batch of images in memory at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FAILURE_EXIT_CODE, ImageError, UsageError
from .images import is_image_file
from .predictor import MAX_BATCH, Predictor
from .text import printable

PROG = "edge-runtime"
MAX_IMAGES = 200_000  # a folder larger than this is refused: evaluate a sample (paths alone would take 40 MB)
TABLE_CLASSES = 12  # the text confusion matrix up to this many classes (--json always has it)
Z95 = 1.959964  # two-sided 95%


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of successes/total, as shares 0..1 ((0, 1) for no images)."""
    if total <= 0:
        return 0.0, 1.0
    p, n = successes / total, total
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)
    return max(0.0, low), min(1.0, high)


def label_key(text: str) -> str:
    """A label as a folder name can hold it: lower case, each run of other than letters and digits one `_`."""
    return re.sub(r"[\W_]+", "_", text.casefold()).strip("_")


@dataclass
class ClassFolder:
    folder: str  # the sub-folder's name
    label: int  # the model's output index it holds
    files: list[Path] = field(default_factory=list)


@dataclass
class FolderEvaluation:
    """What `evaluate` measured: accuracy with its interval, per class, the confusion matrix, what was left out."""

    model: str
    variant: str | None
    backend: str
    labels: list[str]
    classes: list[ClassFolder]
    confusion: np.ndarray  # (labels, labels): rows the true class, columns the answer
    skipped: list[str] = field(default_factory=list)  # sub-folders that are no label
    failed: list[dict[str, str]] = field(default_factory=list)  # images that could not be read

    @property
    def images(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0

    def per_class(self) -> list[dict[str, Any]]:
        rows = []
        for index in sorted({c.label for c in self.classes}):
            images, right = int(self.confusion[index].sum()), int(self.confusion[index, index])
            rows.append({"label": self.labels[index], "index": index, "images": images, "correct": right,
                         "accuracy": right / images if images else None})  # fmt: skip
        return rows

    def matrix(self) -> dict[str, Any]:
        """The confusion matrix over the classes present and those answered: labels, then rows of counts."""
        rows = sorted({c.label for c in self.classes})
        columns = sorted(set(rows) | set(np.flatnonzero(self.confusion.sum(axis=0)).tolist()))
        return {
            "true": [self.labels[i] for i in rows],
            "predicted": [self.labels[i] for i in columns],
            "counts": self.confusion[np.ix_(rows, columns)].tolist(),
        }

    def to_dict(self) -> dict[str, Any]:
        low, high = wilson(self.correct, self.images)
        return {
            "model": self.model, "variant": self.variant, "backend": self.backend, "images": self.images,
            "correct": self.correct, "accuracy": self.accuracy, "interval_95": [low, high],
            "classes": self.per_class(), "confusion": self.matrix(), "skipped_folders": self.skipped,
            "failed": self.failed,
        }  # fmt: skip


def match_folders(root: Path, labels: list[str]) -> tuple[list[ClassFolder], list[str]]:
    """Each sub-folder of `root` that names a label, and a line for each that does not."""
    if not root.exists():
        raise UsageError(f"{root}: no such folder; evaluate wants a folder with one sub-folder per class")
    if not root.is_dir():
        raise UsageError(f"{root}: is a file; evaluate wants a folder with one sub-folder per class")
    exact = {label: index for index, label in enumerate(labels)}
    loose: dict[str, list[int]] = {}
    for position, label in enumerate(labels):
        loose.setdefault(label_key(label), []).append(position)
    found: list[ClassFolder] = []
    skipped: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        index = exact.get(sub.name)
        if index is None and len(loose.get(label_key(sub.name), [])) == 1:
            index = loose[label_key(sub.name)][0]
        if index is None:
            skipped.append(f"{sub.name}/ is not one of the model's labels ({_some(labels)}): its images are left out")
        else:
            found.append(ClassFolder(sub.name, index))
    if not found:
        raise UsageError(
            f"{root}: none of its sub-folders is one of the model's {len(labels)} labels ({_some(labels)}); put each "
            "class's images in a folder named after its label"
        )
    return found, skipped


def _some(labels: list[str], shown: int = 10) -> str:
    more = f", ... ({len(labels) - shown} more)" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def list_images(root: Path, classes: list[ClassFolder], limit: int = MAX_IMAGES) -> list[str]:
    """Fill each class's files (image files under its folder, sorted); a line for each class folder without any."""
    empty, total = [], 0
    for found in classes:
        files: list[Path] = []
        for directory, subdirs, names in os.walk(root / found.folder):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            files += [Path(directory) / name for name in names if is_image_file(Path(name))]
            if total + len(files) > limit:
                raise UsageError(
                    f"{root}: holds more than {limit:,} images; evaluate a sample of them (a few hundred per class "
                    "give accuracy within a few points)"
                )
        found.files, total = sorted(files), total + len(files)
        if not files:
            empty.append(f"{found.folder}/ holds no images")
    return empty


def evaluate_folder(
    predictor: Predictor, root: Path, progress: Callable[[int, int], None] | None = None
) -> FolderEvaluation:
    """Every image of the class folders of `root` through the model, in batches; a FolderEvaluation."""
    labels = predictor.labels
    classes, skipped = match_folders(Path(root), labels)
    skipped += list_images(Path(root), classes)
    items = [(path, found.label) for found in classes for path in found.files]
    if not items:
        raise UsageError(f"{root}: its class folders hold no images")
    result = FolderEvaluation(
        predictor.model_path.name, predictor.variant, predictor.backend.label, labels, classes,
        np.zeros((len(labels), len(labels)), dtype=np.int64), skipped,
    )  # fmt: skip
    for start in range(0, len(items), MAX_BATCH):
        pixels, truth = [], []
        for path, label in items[start : start + MAX_BATCH]:
            try:
                pixels.append(predictor.preprocess(path))
                truth.append(label)
            except ImageError as error:
                result.failed.append({"image": str(path), "error": str(error)})
        if pixels:
            answers = predictor.scores(np.stack(pixels)).argmax(axis=1)
            np.add.at(result.confusion, (np.asarray(truth), answers), 1)
        if progress is not None:
            progress(min(start + MAX_BATCH, len(items)), len(items))
    if not result.images:
        raise ImageError(f"{root}: none of its {len(items):,} images could be read ({result.failed[0]['error']})")
    return result


# --- the command ----------------------------------------------------------------------------------


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """`evaluate MODEL DIR` and its options (`common`: --threads, --backend, --json, --debug, as predict's)."""
    parser = commands.add_parser("evaluate", help="top-1 accuracy on a folder of labelled images (one sub-folder "
                                 "per class, named after its label)")  # fmt: skip
    parser.add_argument("model", type=Path, help=".tflite file or model folder")
    parser.add_argument("folder", type=Path, help="folder with one sub-folder of images per class")
    parser.add_argument("--labels", type=Path, default=None, help="labels file (default: the model folder's)")
    parser.add_argument("--input-mean", type=float, default=None, help="as predict's, for models without metadata")
    parser.add_argument("--input-std", type=float, default=None, help="as predict's, for models without metadata")
    parser.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                        help="invert colours before the model (default: as metadata says)")  # fmt: skip
    common(parser)


def run(args: argparse.Namespace) -> int:
    """The command: the table (or --json) on stdout, notes and problems on stderr; exit 1 if an image failed."""
    predictor = Predictor(args.model, labels=args.labels, threads=args.threads, backend=args.backend,
                          input_mean=args.input_mean, input_std=args.input_std, invert=args.invert)  # fmt: skip
    if predictor.choice_note:
        print(f"{PROG}: {printable(predictor.choice_note)}", file=sys.stderr)
    for line in [*predictor.warnings, *predictor.assumptions]:
        print(f"{PROG}: warning: {printable(line)}", file=sys.stderr)
    result = evaluate_folder(predictor, args.folder)
    note = predictor.input_note()
    for line in [*result.skipped, *([note] if note else [])]:
        print(f"{PROG}: note: {printable(line)}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(printable(line) for line in table(result)))
    for failed in result.failed:
        print(f"{PROG}: error: {printable(failed['error'])}", file=sys.stderr)
    if result.failed:
        total = result.images + len(result.failed)
        print(f"{PROG}: {len(result.failed)} of {total} images failed", file=sys.stderr)
        return FAILURE_EXIT_CODE
    return 0


def table(result: FolderEvaluation) -> list[str]:
    """The text form: accuracy with its interval, per class, and the confusion matrix when it fits."""
    low, high = wilson(result.correct, result.images)
    which = f" ({result.variant})" if result.variant else ""
    lines = [
        f"{result.model}{which} on {result.backend}: top-1 accuracy {result.accuracy:.2%} ({result.correct:,} of "
        f"{result.images:,} images; 95% interval {low:.1%}-{high:.1%})",
        "",
    ]
    rows = result.per_class()
    width = max(len("class"), *(len(r["label"]) for r in rows))
    lines.append(f"{'class':<{width}}  {'images':>7}  {'right':>7}  accuracy")
    lines += [f"{r['label']:<{width}}  {r['images']:>7,}  {r['correct']:>7,}  {r['accuracy']:.2%}"
              if r["images"] else f"{r['label']:<{width}}  {0:>7}  {0:>7}  -" for r in rows]  # fmt: skip
    matrix = result.matrix()
    if len(matrix["predicted"]) > TABLE_CLASSES:
        return [*lines, "", f"confusion matrix: {len(matrix['predicted'])} classes, in --json"]
    cell = max(5, *(len(label) for label in matrix["predicted"]))
    lines += ["", "confusion (rows: true class, columns: answered)",
              " " * width + "".join(f"  {label:>{cell}}" for label in matrix["predicted"])]  # fmt: skip
    for label, counts in zip(matrix["true"], matrix["counts"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"  {count:>{cell},}" for count in counts))
    return lines

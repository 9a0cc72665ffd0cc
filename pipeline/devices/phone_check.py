"""A phone's view of a model folder: MediaPipe Tasks' Python ImageClassifier (the same C++ graph as Android and iOS).

`python -m pipeline.devices.phone_check check MODEL_DIR` (`make phone-check MODEL=...`) makes, once, a venv with
MediaPipe outside the project's (a cache folder: $EDGE_PIPELINE_PHONE_CACHE, else ~/.cache/edge-pipeline/phone),
classifies the folder's samples with every phone variant (`--target mediapipe`) there, and says per variant
whether MediaPipe's top-1 and its label names agree with edge_runtime's on this machine. The tests run the same
classification on 2,000 test images (tests/test_phone.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = ("mediapipe==1.2.3", "pillow")  # what a phone's Python stands in for: MediaPipe Tasks
# MediaPipe's own top-1 (index, label name it reads from the file, score) of each image file, as a phone app asks.
CLASSIFY = r"""
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions
from PIL import Image

options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=sys.argv[1]), max_results=1)
top = []
with ImageClassifier.create_from_options(options) as classifier:
    for path in sys.argv[2:]:
        pixels = np.asarray(Image.open(path).convert("RGB"))  # MediaPipe takes SRGB; a camera gives colour
        best = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)).classifications[0]
        top.append([best.categories[0].index, best.categories[0].category_name, best.categories[0].score])
print(json.dumps(top))
"""


class PhoneError(Exception):
    """One line saying why the phone check cannot run here."""


@dataclass(frozen=True)
class PhoneRow:
    """One phone variant on the samples, and whether MediaPipe agreed with edge_runtime."""

    variant: str
    held: bool
    detail: str


def cache_dir() -> Path:
    override = os.environ.get("EDGE_PIPELINE_PHONE_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-pipeline" / "phone"


def venv_python(home: Path | None = None, log: object = print) -> Path:
    """The venv's python, made (or remade when REQUIREMENTS changed) in `home`."""
    home = home or cache_dir()
    python, marker = home / "venv" / "bin" / "python", home / "venv" / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    home.mkdir(parents=True, exist_ok=True)
    log(f"making a venv with {' '.join(REQUIREMENTS)} in {home / 'venv'} (once)")  # type: ignore[operator]
    for command, what in (
        ([sys.executable, "-m", "venv", "--clear", str(home / "venv")], "python -m venv"),
        ([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS], "pip install"),
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PhoneError(f"{what} failed (exit {done.returncode}): {tail[0]}")
    marker.write_text(wanted)
    return python


def _samples(model_dir: Path, workdir: Path) -> list[Path]:
    """The folder's samples/ images, or one gray picture when it has none."""
    folder = model_dir / "samples"
    found = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    if found:
        return found
    from PIL import Image

    gray = workdir / "gray.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(gray)
    return [gray]


def _variant(python: Path, model_dir: Path, variant: str, file: str, images: list[Path]) -> PhoneRow:
    from edge_runtime import Predictor

    done = subprocess.run([str(python), "-c", CLASSIFY, str(model_dir / file), *map(str, images)],
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    if done.returncode != 0:
        return PhoneRow(variant, False, f"MediaPipe failed: {done.stderr.strip().splitlines()[-1:]}")
    phone = json.loads(done.stdout)
    predictor = Predictor(model_dir / file)
    ours = [predictor.predict(image, top_k=1)[0] for image in images]
    differ = [image.name for image, (index, _, _), mine in zip(images, phone, ours, strict=True) if index != mine.index]
    names = all(name == predictor.labels[index] for index, name, _ in phone)
    if differ or not names:
        why = f"top-1 differs on {', '.join(differ)}" if differ else "label names differ from the folder's"
        return PhoneRow(variant, False, f"MediaPipe {why}")
    return PhoneRow(variant, True, f"MediaPipe's top-1 and label names as edge_runtime's on all {len(images)} samples")


def check(model_dir: Path, python: Path) -> list[PhoneRow]:
    """Every phone variant of the folder through MediaPipe (`python`, a venv with REQUIREMENTS) on its samples."""
    from edge_runtime.folder.reader import read_metadata

    model_dir = Path(model_dir)
    variants = {
        name: record["file"]
        for name, record in read_metadata(model_dir)["variants"].items()
        if "mediapipe" in (record.get("targets") or [])
    }
    if not variants:
        raise PhoneError(
            f"{model_dir}: has no variant for phones; make them with `edge-pipeline convert {model_dir} --target "
            "mediapipe`"
        )
    with tempfile.TemporaryDirectory(prefix="edge-pipeline-phone-") as workdir:
        images = _samples(model_dir, Path(workdir))
        return [_variant(python, model_dir, name, file, images) for name, file in variants.items()]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m pipeline.devices.phone_check check MODEL_DIR", file=sys.stderr)
        return 2
    if not (Path(args[1]) / "metadata.json").is_file():
        print(f"phone-check: {args[1]}: not a model folder (no metadata.json)", file=sys.stderr)
        return 2
    try:
        python = venv_python(log=lambda line: print(f"phone-check: {line}", file=sys.stderr))
        rows = check(Path(args[1]), python)
    except (PhoneError, OSError, subprocess.TimeoutExpired) as error:
        print(f"phone-check: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - a damaged folder or file: one line, never a traceback
        print(f"phone-check: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    width = max(len(row.variant) for row in rows)
    for row in rows:
        print(f"{'agrees' if row.held else 'DIFFERS':<7}  {row.variant:<{width}}  {row.detail}")
    failed = sum(not row.held for row in rows)
    print(f"MediaPipe Tasks ImageClassifier ({REQUIREMENTS[0]}): {len(rows) - failed} agree, {failed} differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

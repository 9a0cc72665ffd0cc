"""--resize stretch|crop|pad: one geometry, applied the same in training, evaluation, edge_runtime (files and
streams) and, for crop, by MediaPipe itself through a centred region of interest."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.errors import MetadataError
from edge_runtime.folder.records import InputSpec
from edge_runtime.images import fit, prepare_pixels
from tests.conftest import ROOT, requires_fashion_mnist

# 48x32 photos of a 28x28 item with coloured bands at its sides: crop keeps the item, stretch squeezes the bands in.
WIDTH, HEIGHT, SIDE = 48, 32, 32
# MediaPipe's ImageClassifier with a centred region of interest: what a phone app passes for --resize crop.
MEDIAPIPE_CROP = r"""
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.components.containers.rect import RectF
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions
from mediapipe.tasks.python.vision.core.image_processing_options import ImageProcessingOptions

options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=sys.argv[1]), max_results=1)
top = []
with ImageClassifier.create_from_options(options) as classifier:
    for image in np.load(sys.argv[2]):
        height, width = image.shape[:2]
        side = min(height, width)
        roi = RectF(left=(width - side) / 2 / width, top=(height - side) / 2 / height,
                    right=(width + side) / 2 / width, bottom=(height + side) / 2 / height)
        picture = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        result = classifier.classify(picture, ImageProcessingOptions(region_of_interest=roi))
        top.append(result.classifications[0].categories[0].index)
print(json.dumps(top))
"""


def _spec(resize: str, width: int = SIDE, height: int = SIDE) -> InputSpec:
    return InputSpec(height, width, 3, resize=resize)


def test_each_mode_has_its_geometry() -> None:
    image = np.arange(HEIGHT * WIDTH * 3, dtype=np.uint32).reshape(HEIGHT, WIDTH, 3) % 251
    picture = Image.fromarray(image.astype(np.uint8))
    cropped = np.asarray(fit(picture, _spec("crop")))
    assert cropped.shape == (SIDE, SIDE, 3) and np.array_equal(cropped, image[:, 8:40].astype(np.uint8))
    padded = np.asarray(fit(picture, _spec("pad", WIDTH, WIDTH)))
    assert padded.shape == (WIDTH, WIDTH, 3) and np.array_equal(padded[8:40], image.astype(np.uint8))
    assert (padded[:8] == padded[8]).all() and (padded[40:] == padded[39]).all()  # the edges repeated
    stretched = np.asarray(fit(picture, _spec("stretch")))
    assert np.array_equal(stretched, np.asarray(picture.resize((SIDE, SIDE), Image.BILINEAR)))
    assert fit(picture, _spec("crop", WIDTH, HEIGHT)) is picture  # already the size: untouched


def test_the_mode_is_part_of_the_folder_contract() -> None:
    assert InputSpec.from_dict({"height": 1, "width": 1, "channels": 3}).resize == "stretch"  # older folders
    assert InputSpec.from_dict(_spec("pad").to_dict()) == _spec("pad")
    with pytest.raises(MetadataError, match=r"input.resize must be one of stretch, crop, pad"):
        InputSpec.from_dict({**_spec("crop").to_dict(), "resize": "zoom"})


def _photos(root: Path, fashion: tuple[np.ndarray, np.ndarray]) -> Path:
    """Three classes of 48x32 JPEGs: the item in the middle, random coloured bands at both sides."""
    images, labels = fashion
    rng = np.random.default_rng(7)
    for label, name in {1: "trouser", 7: "sneaker", 8: "bag"}.items():
        (root / name).mkdir(parents=True)
        for index, member in enumerate(np.flatnonzero(labels == label)[:70]):
            item = np.zeros((HEIGHT, SIDE, 3), np.uint8)
            item[2:30, 2:30] = images[member][:, :, :1]
            bands = rng.integers(0, 256, size=(2, 1, 1, 3), dtype=np.uint8).repeat(HEIGHT, 1).repeat(8, 2)
            photo = np.concatenate([bands[0], item, bands[1]], axis=1)
            Image.fromarray(photo).save(root / name / f"{name}_{index:03d}.jpg", quality=95)
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
@requires_fashion_mnist
def test_crop_gives_the_same_top1_through_every_path(
    tmp_path: Path, fashion_arrays: tuple[np.ndarray, np.ndarray], device_python: Callable[[str], Path]
) -> None:
    photos, folder = _photos(tmp_path / "photos", fashion_arrays), tmp_path / "cropped"
    _run("-m", "pipeline", "train", "--data", str(photos), "--model", "cnn", "--input-size", str(SIDE),
         "--resize", "crop", "--epochs", "3", "--output", str(folder))  # fmt: skip
    _run("-m", "pipeline", "convert", str(folder), "--precision", "float32", "--target", "tflite",
         "--target", "mediapipe")  # fmt: skip
    _run("-m", "pipeline", "evaluate", str(folder), "--max-drop", "100")
    metadata = json.loads((folder / "metadata.json").read_text())
    assert (
        metadata["input"]["resize"] == "crop" and metadata["variants"]["mediapipe-float32"]["image"]["resize"] == "crop"
    )
    predictions = json.loads((folder / "predictions.json").read_text())
    test = [photos / name for name in json.loads((folder / "split.json").read_text())["test"]]
    keras = predictions["keras"]
    assert predictions["variants"]["float32"] == keras and predictions["variants"]["mediapipe-float32"] == keras
    files = json.loads(_run("-m", "edge_runtime", "predict", str(folder / "model_float32.tflite"),
                            *map(str, test), "--json", "--top-k", "1").stdout)  # fmt: skip
    assert [r["top_k"][0]["index"] for r in files] == keras
    float32 = str(folder / "model_float32.tflite")
    stream = subprocess.run([sys.executable, "-m", "edge_runtime", "predict", float32, "-", "--jsonl", "--top-k", "1"],
                            input=b"".join(p.read_bytes() for p in test), capture_output=True, timeout=300, cwd=ROOT,
                            check=True)  # fmt: skip
    frames = [json.loads(line) for line in stream.stdout.decode().splitlines()]
    assert [f["top_k"][0]["index"] for f in frames] == keras
    decoded = tmp_path / "decoded.npy"  # the phone's camera frames: the same decoded pixels, at their own size
    np.save(decoded, np.stack([np.asarray(Image.open(p).convert("RGB")) for p in test]))
    phone = subprocess.run([str(device_python("mediapipe")), "-c", MEDIAPIPE_CROP,
                            str(folder / "model_mediapipe-float32.tflite"), str(decoded)],
                           capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    assert json.loads(phone.stdout.strip().splitlines()[-1]) == keras
    cropped = prepare_pixels(Image.open(test[0]), dataclasses.replace(InputSpec(SIDE, SIDE, 3), resize="crop"))
    assert np.array_equal(cropped, np.asarray(Image.open(test[0]).convert("RGB"))[:, 8:40])  # the item, no bands

"""Shared fixtures: real data, a really trained and converted model folder, image folders."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.bad_files import Workspace, build_two_output_model

# Before TensorFlow is imported anywhere: quiet logs, deterministic CPU runs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]
# No test touches the real home: HOME is a scratch folder for the session. What is slow to make and safe to
# keep between sessions (the emulated Pi's userland, pip's downloads) lives in the checkout's .test-cache/.
TEST_CACHE = ROOT / ".test-cache"
os.environ.setdefault("EDGE_PIPELINE_PI_CACHE", str(TEST_CACHE / "pi-bookworm-arm64"))
os.environ.setdefault("PIP_CACHE_DIR", str(TEST_CACHE / "pip"))
os.environ["HOME"] = tempfile.mkdtemp(prefix="edge-pipeline-test-home-")
os.environ.pop("XDG_CACHE_HOME", None)
SHARED = ROOT.parent / "shared"
CORAL = SHARED / "third_party" / "coral"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

requires_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST from Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
requires_coral = pytest.mark.skipif(
    not CORAL.is_dir(), reason="../shared/third_party/coral is absent (it only exists beside the project's checkout)"
)


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under a folder, to prove a command left it byte-identical (the writers' lock aside)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="session")
def fashion_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST test images (N, 28, 28, 1) and labels, from the Debian package."""
    if not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed")
    from pipeline.data.dataset import _read_idx

    images = _read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")[..., None]
    labels = _read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


@pytest.fixture(scope="session")
def trained_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cnn really trained on a Fashion-MNIST subset, converted to every precision and evaluated.

    Shared read-only by many tests; a test that changes files must work on `folder_copy`.
    """
    if not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed")
    from pipeline.conversion.stage import ConvertConfig, convert
    from pipeline.data.dataset import DataConfig
    from pipeline.measure.evaluate import EvaluateConfig, evaluate
    from pipeline.training.stage import HyperParams, TrainConfig, train

    folder = tmp_path_factory.mktemp("models") / "fmnist-cnn"
    train(TrainConfig(data=DataConfig(limit=4000), hparams=HyperParams(epochs=3), output=folder))
    convert(ConvertConfig(folder=folder, calibration_samples=(200,)))
    evaluate(EvaluateConfig(folder=folder, max_drop=100.0))
    return folder


@pytest.fixture
def folder_copy(trained_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the trained folder that a test may damage."""
    copy = tmp_path / trained_folder.name
    shutil.copytree(trained_folder, copy)
    return copy


def write_image_folder(
    root: Path, images: np.ndarray, labels: np.ndarray, classes: dict[int, str], per_class: int
) -> Path:
    """Class sub-folders of real images in a mix of formats, modes and sizes."""
    formats = [("png", "L"), ("jpg", "RGB"), ("bmp", "RGB"), ("png", "RGBA"), ("png", "P"), ("jpeg", "L")]
    for label, name in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(labels == label)[:per_class]
        for index, member in enumerate(members):
            extension, mode = formats[index % len(formats)]
            size = 28 + 8 * (index % 4)  # mixed sizes
            image = Image.fromarray(images[member][:, :, 0]).resize((size, size)).convert(mode)
            image.save(root / name / f"{name}_{index:03d}.{extension}")
    return root


@pytest.fixture
def image_folder(tmp_path: Path, fashion_arrays: tuple[np.ndarray, np.ndarray]) -> Path:
    """Three classes of Fashion-MNIST images as files: trousers, bags, sneakers."""
    images, labels = fashion_arrays
    return write_image_folder(tmp_path / "photos", images, labels, {1: "trouser", 7: "sneaker", 8: "bag"}, per_class=30)


# A 'device': a fresh venv with numpy, pillow and one interpreter, nothing else.
DEVICES = {
    "litert-numpy2": ["numpy>=2", "pillow", "ai-edge-litert>=2.3"],
    "tflite-runtime-numpy1": ["numpy==1.26.4", "pillow==10.0.0", "tflite-runtime==2.14.0"],
}
# A device missing what a model needs (the SSH tests' "no interpreter there").
BROKEN_DEVICES = {"no-interpreter": ["numpy>=2", "pillow"]}
# A phone's view of a model: MediaPipe Tasks' Python ImageClassifier (the same C++ graph as Android and iOS).
PHONES = {"mediapipe": ["mediapipe==1.2.3", "pillow"]}


@pytest.fixture(scope="session")
def device_python(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The python of a device venv by name (DEVICES), created once per test session."""
    made: dict[str, Path] = {}
    packages = {**DEVICES, **BROKEN_DEVICES, **PHONES}

    def make(name: str) -> Path:
        if name not in made:
            venv = tmp_path_factory.mktemp("devices") / name
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            python = venv / "bin" / "python"
            install = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages[name]],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if install.returncode != 0:
                pytest.fail(f"could not install {packages[name]}: {install.stderr[-800:]}")
            made[name] = python
        return made[name]

    return make


def without_metadata(source: Path, target: Path) -> Path:
    """A copy of a .tflite file with its TFLite metadata, own input entry and labels zip taken out (a model from
    elsewhere that says nothing about itself); min_runtime_version stays."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(source.read_bytes()))
    model.metadata = [m for m in model.metadata or [] if m.name in (b"min_runtime_version", "min_runtime_version")]
    target.write_bytes(bytes(fb.convert_object_to_bytearray(model)))
    return target


def board(tmp_path: Path, folder: Path, name: str = "model") -> Path:
    """What a user copies to a device: edge_runtime/ and a model folder without model.keras."""
    target = tmp_path / "board"
    shutil.copytree(ROOT / "edge_runtime", target / "edge_runtime", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(folder, target / name, ignore=shutil.ignore_patterns("model.keras"))
    return target


@pytest.fixture
def workspace(folder_copy: Path, tmp_path: Path, fashion_arrays: tuple) -> Workspace:
    """A damageable copy of the trained folder beside a good image folder, for the bad-input tables."""
    images, labels = fashion_arrays
    photos = write_image_folder(
        tmp_path / "photos", images, labels, {1: "trouser", 7: "sneaker", 8: "bag"}, per_class=12
    )
    return Workspace(tmp_path, folder_copy, photos, fashion_arrays)


@pytest.fixture(scope="session")
def two_output_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real TFLite model that is not a classifier: one image in, two outputs."""
    return build_two_output_model(tmp_path_factory.mktemp("two-outputs"))

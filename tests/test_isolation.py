"""edge_runtime on a 'device': a fresh venv with numpy, pillow and one interpreter, nothing else.

Two devices: ai-edge-litert on numpy 2, and the legacy tflite-runtime 2.14 on numpy 1.26 with
the oldest Pillow we support. Only `edge_runtime/` and a model folder are copied over.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from pipeline.data.dataset import NAMED_DATASETS
from tests.conftest import DEVICES, requires_fashion_mnist
from tests.conftest import board as make_board

pytestmark = [pytest.mark.slow, requires_fashion_mnist]

CHECK = """
import json, sys
from edge_runtime.cli import main
code = main(sys.argv[1:])
import numpy
print(json.dumps({"code": code, "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
                  "numpy": numpy.__version__}), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("device", list(DEVICES))
def test_copied_edge_runtime_predicts_on_a_device_without_tensorflow(
    device: str, trained_folder: Path, fashion_arrays: tuple, tmp_path: Path, device_python: Callable[[str], Path]
) -> None:
    python = device_python(device)
    board = make_board(tmp_path, trained_folder)
    images, labels = fashion_arrays
    Image.fromarray(images[0][:, :, 0]).save(board / "boot.png")
    (board / "check.py").write_text(CHECK)

    for precision in ("int8", "float32"):
        completed = subprocess.run(
            [
                str(python),
                "check.py",
                "predict",
                f"model/model_{precision}.tflite",
                "boot.png",
                "--json",
                "--top-k",
                "3",
            ],
            cwd=board,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        facts = json.loads(completed.stderr.strip().splitlines()[-1])
        assert completed.returncode == 0 and facts["code"] == 0, completed.stderr
        assert not facts["tensorflow"] and not facts["keras"], "tensorflow/keras imported on the device"
        assert facts["numpy"].startswith("1.26" if "numpy1" in device else "2.")
        results = json.loads(completed.stdout)
        assert results[0]["image"] == "boot.png" and len(results[0]["top_k"]) == 3
        truth = NAMED_DATASETS["fashion-mnist"].labels[labels[0]]
        assert results[0]["top_k"][0]["label"] == truth, f"the first test image is a {truth}"

    bench = subprocess.run(
        [str(python), "-m", "edge_runtime", "bench", "model", "--runs", "10", "--json"],
        cwd=board,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["backend"].startswith("litert" if "litert" in device else "tflite-runtime")

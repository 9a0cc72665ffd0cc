"""tf.distribute: MirroredStrategy over 2 logical CPUs, a 2-worker MultiWorkerMirroredStrategy on 127.0.0.1 with
TF_CONFIG, mixed precision. Each run is its own process: a strategy must be made before TensorFlow runs anything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, requires_fashion_mnist

QUICK = ["--limit", "4000", "--epochs", "3", "--seed", "7"]


def _train(output: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "train", *QUICK, "--output", str(output), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-2000:]
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _training(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text())["training"]


@pytest.mark.slow
@requires_fashion_mnist
def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path: Path) -> None:
    """The same global batch (2 x 32 against 64): within 1 point of test accuracy."""
    mirrored = _train(tmp_path / "mirrored", "--distribute", "mirrored", "--replicas", "2", "--batch-size", "32")
    _finished(mirrored)
    _finished(_train(tmp_path / "single", "--batch-size", "64"))
    two, one = _training(tmp_path / "mirrored"), _training(tmp_path / "single")
    assert two["distribute"] == {"strategy": "mirrored", "replicas": 2, "workers": 1, "mixed_precision": False}
    assert one["distribute"] is None and two["hyperparameters"]["batch_size"] == 32
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.01, (two["test_accuracy"], one["test_accuracy"])
    assert two["test_accuracy"] > 0.75 and two["epochs_run"] == 3


@pytest.mark.slow
@requires_fashion_mnist
def test_two_workers_on_localhost_write_one_folder_that_converts_and_predicts(tmp_path: Path) -> None:
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]

    def tf_config(index: int) -> dict[str, str]:
        task = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        return {"TF_CONFIG": json.dumps(task)}

    worker = _train(tmp_path / "worker-disk", "--distribute", "multi-worker", env=tf_config(1))
    chief = _train(tmp_path / "model", "--distribute", "multi-worker", env=tf_config(0))
    chief_out, worker_out = _finished(chief), _finished(worker)
    assert not (tmp_path / "worker-disk").exists()  # only the chief writes
    assert "the chief writes the model folder" in worker_out and "written" in chief_out
    training = _training(tmp_path / "model")
    assert training["distribute"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2, "mixed_precision": False}
    assert training["test_accuracy"] > 0.6  # really trained (chance: 0.1)
    converted = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "convert",
            str(tmp_path / "model"),
            "--precision",
            "float32",
            "--precision",
            "int8",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert converted.returncode == 0, converted.stderr[-2000:]
    sample = ROOT / "models" / "fashion-mnist-cnn" / "samples" / "trouser.png"
    predicted = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "predict", str(tmp_path / "model"), str(sample), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["top_k"][0]["label"] == "Trouser"


@pytest.mark.slow
@requires_fashion_mnist
# The MLP: the same mixed-precision code (policy, loss scaling, float32 save) as the cnn, at a sixth of the time:
# float16 convolutions have no fast kernels on this CPU (the cnn trained at 50 ms per image, 190-260 s per case;
# the MLP takes 40 s and scores 66-75% after one epoch). Batch 16 on 2 replicas: 113 steps of the custom step.
@pytest.mark.parametrize(
    "where", [[], ["--distribute", "mirrored", "--replicas", "2", "--batch-size", "16"]], ids=["fit", "custom-step"]
)
def test_mixed_precision_saves_a_float32_model_that_converts(tmp_path: Path, where: list[str]) -> None:
    """model.fit wraps Adam in a LossScaleOptimizer itself; the custom step scales the loss with it."""
    _finished(_train(tmp_path / "model", "--mixed-precision", "--epochs", "1", "--model", "mlp", *where))
    training = _training(tmp_path / "model")
    assert training["mixed_precision"] is True and training["test_accuracy"] > 0.3
    check = (
        "import keras, sys; m = keras.models.load_model(sys.argv[1], compile=False); "
        "print(sorted({layer.dtype_policy.name for layer in m.layers}))"
    )
    policies = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path / "model" / "model.keras")], capture_output=True, text=True
    )
    assert policies.stdout.strip().splitlines()[-1] == "['float32']"
    converted = subprocess.run(
        [sys.executable, "-m", "pipeline", "convert", str(tmp_path / "model"), "--precision", "float32"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert converted.returncode == 0, converted.stderr[-2000:]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--distribute", "multi-worker"], {}, "--distribute multi-worker needs TF_CONFIG, e.g."),
        (["--distribute", "multi-worker"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not a cluster and task"),
        (["--replicas", "2"], {}, "--replicas is for --distribute mirrored"),
        (["--distribute", "sideways"], {}, "sideways"),
    ],
)
def test_distribution_usage_errors_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

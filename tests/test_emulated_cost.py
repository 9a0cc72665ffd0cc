"""The device's cost without the device: real qemu, the real plugin, both real interpreters on the emulated Pi.

One `edge-pipeline benchmark --emulate pi5 --emulate pi3` on a copy of the shipped folder (about 40 s after the
emulated Pi is built) is shared by the checks; determinism is checked by counting the same files twice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_runtime_compat import _emulator

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
PIPELINE = str(Path(sys.executable).parent / "edge-pipeline")
pytestmark = pytest.mark.slow


def _plugin() -> Path:
    from pipeline.devices import instructions
    from pipeline.devices.emulator import cache_dir

    if instructions.missing_tools():
        if os.environ.get("CI"):
            pytest.fail("qemu-user and gcc are missing: .ci/run installs them")
        pytest.skip(f"counting instructions needs {', '.join(instructions.missing_tools())} (apt-get install them)")
    return instructions.plugin(cache_dir().parent)


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _emulator(), _plugin()
    folder = tmp_path_factory.mktemp("emulated") / "fashion-mnist-cnn"
    shutil.copytree(SHIPPED, folder)
    done = subprocess.run(
        [PIPELINE, "benchmark", str(folder), "--emulate", "pi5", "--emulate", "pi3"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return folder


def _devices(folder: Path) -> dict:
    return json.loads((folder / "benchmark.json").read_text())["devices"]


def test_two_runs_count_the_same_to_the_instruction() -> None:
    from pipeline.devices import instructions

    run = instructions.Run(_emulator(), instructions.resolve("pi5"), "litert", _plugin())
    files = {name: (SHIPPED / name).read_bytes() for name in ("model_float32.tflite", "model_int8.tflite")}
    first, second = instructions.count(run, files), instructions.count(run, files)
    assert first == second and first["model_int8.tflite"]["instructions"] > 100_000


def test_on_a_cortex_a76_int8_costs_fewer_instructions_and_executes_dot_products(counted: Path) -> None:
    pi5 = _devices(counted)["emulated-pi5"]
    assert pi5["kind"] == "emulated-instructions" and pi5["facts"]["cpu"] == "cortex-a76"
    litert = pi5["interpreters"]["litert"]["variants"]
    assert litert["int8"]["instructions"] < litert["float32"]["instructions"] / 2
    assert litert["int8"]["dot_instructions"] > 100_000 and litert["float32"]["dot_instructions"] == 0
    assert litert["int8"]["ratio_to_float32"] == pytest.approx(
        litert["int8"]["instructions"] / litert["float32"]["instructions"]
    )
    legacy = pi5["interpreters"]["tflite-runtime"]["variants"]
    assert "needs TFLite runtime 2.17.0" in legacy["dynamic"]["error"]  # a row with the reason, as on a device
    assert legacy["int8"]["dot_instructions"] == 0  # tflite-runtime 2.14 does not hand int8 to XNNPACK
    assert "p50_ms" not in json.dumps(pi5)  # never mixed up with milliseconds


def test_on_a_cortex_a53_no_variant_executes_a_dot_product(counted: Path) -> None:
    pi3 = _devices(counted)["emulated-pi3"]
    for interpreter in pi3["interpreters"].values():
        for row in interpreter["variants"].values():
            assert "error" in row or row["dot_instructions"] == 0, row


def _report_for_pi5(folder: Path) -> None:
    done = subprocess.run([PIPELINE, "report", str(folder), "--device", "pi5", "--samples", "0"],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_report_for_pi5_recommends_from_the_counts_and_states_both_machines(counted: Path) -> None:
    _report_for_pi5(counted)
    report = (counted / "report.md").read_text()
    first = report.split("\n\n")[1]
    assert first.startswith("**On an emulated Raspberry Pi 5") and "Ship model_int8.tflite (int8)" in first
    assert "- On this machine, by latency: Ship " in report and "(Latency: this machine, " in report
    assert "## On an emulated Raspberry Pi" in report and "16-multiply-add SDOT" in report


def test_missing_qemu_is_one_line_naming_the_packages(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist-cnn"
    shutil.copytree(SHIPPED, folder)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # neither qemu-aarch64 nor gcc on it
    done = subprocess.run(
        [PIPELINE, "benchmark", str(folder), "--emulate", "pi5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "apt-get install --no-install-recommends" in lines[0], lines
    assert "qemu-user" in lines[0] and "gcc" in lines[0]


def test_the_pi5_pick_is_recorded_for_it_and_deployed_to_a_pi5_leaving_the_default(
    counted: Path, tmp_path: Path
) -> None:
    """`report --device pi5` records its pick; a deploy to a device that says it is a Pi 5 runs it there."""
    from tests.test_hostile_folders import STAND_IN_SSH

    before = json.loads((counted / "metadata.json").read_text())["recommended"]
    _report_for_pi5(counted)
    metadata = json.loads((counted / "metadata.json").read_text())
    assert metadata["recommended"] == before == "dynamic" and metadata["device_picks"]["emulated-pi5"] == "int8"
    home = tmp_path / "home"
    home.mkdir()
    ssh = tmp_path / "ssh"
    ssh.write_text(STAND_IN_SSH.format(home=home))
    ssh.chmod(0o755)
    python = _emulator().python("litert")  # type: ignore[attr-defined]  # its /proc/cpuinfo says Raspberry Pi 5
    argv = [PIPELINE, "deploy", str(counted), "--to", "device:~/pi", "--ssh-command", str(ssh), "--python", str(python)]
    deployed = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    assert deployed.returncode == 0, deployed.stdout[-1500:] + deployed.stderr[-1500:]
    assert "int8 given the folder: the pick for an emulated" in deployed.stdout
    there = json.loads((home / "pi" / "model" / "metadata.json").read_text())
    assert (
        there["recommended"] == "int8"
        and json.loads((counted / "metadata.json").read_text())["recommended"] == "dynamic"
    )

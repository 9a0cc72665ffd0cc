"""The device in the loop over real SSH: a real sshd on 127.0.0.1 started here, the system ssh client.

The 'device' is this machine behind sshd (its own host key, a user key, known_hosts and an ssh config
file given through --ssh-command "ssh -F FILE"), with HOME set to a scratch folder by sshd, and a
fresh venv (numpy, Pillow, one interpreter) as its Python; then the emulated Raspberry Pi's aarch64
Python behind the same sshd. No test sends a packet anywhere but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.surface.cli.app import main as pipeline_main
from tests.conftest import folder_digest

SSHD = Path("/usr/sbin/sshd")


@dataclass
class SshDevice:
    config: Path  # ssh config file: Host device (and the broken variants below)
    home: Path  # the device user's HOME, as sshd sets it
    port: int

    @property
    def command(self) -> str:
        return f"ssh -F {self.config}"

    def args(self, python: Path | str) -> list[str]:
        return ["--ssh-command", self.command, "--python", str(python)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _ssh_config(root: Path, port: int, silent_port: int) -> str:
    common = f"  HostName 127.0.0.1\n  User {os.environ.get('USER', 'root')}\n  IdentitiesOnly yes\n"
    common += f"  UserKnownHostsFile {root}/known_hosts\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
    return (
        f"Host device\n  Port {port}\n  IdentityFile {root}/user_key\n{common}"
        f"Host stranger\n  Port {port}\n  IdentityFile {root}/other_key\n{common}"  # a key sshd does not accept
        f"Host nobody-home\n  Port {_free_port()}\n  IdentityFile {root}/user_key\n{common}"  # nothing listens
        f"Host silent\n  Port {silent_port}\n  IdentityFile {root}/user_key\n{common}"  # accepts, never speaks
        f"Host impostor\n  Port {port}\n  IdentityFile {root}/user_key\n"  # its host key is not the known one
        + common.replace(f"{root}/known_hosts", f"{root}/other_known_hosts")
    )


@pytest.fixture(scope="module")
def ssh_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshDevice]:
    if not SSHD.exists():
        if os.environ.get("CI"):
            pytest.fail("sshd is missing: .ci/run installs openssh-server")
        pytest.skip("the SSH tests need sshd (apt-get install openssh-server)")
    root = tmp_path_factory.mktemp("sshd")
    home = root / "home"
    home.mkdir()
    for name in ("host_key", "user_key", "other_key"):
        _keygen(root / name)
    shutil.copy(root / "user_key.pub", root / "authorized_keys")
    port = _free_port()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\nPidFile {root}/sshd.pid\n"
        f"AuthorizedKeysFile {root}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nSetEnv HOME={home}\n"
    )
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {(root / 'host_key.pub').read_text()}")
    (root / "other_known_hosts").write_text(f"[127.0.0.1]:{port} {(root / 'other_key.pub').read_text()}")
    (root / "ssh_config").write_text(_ssh_config(root, port, silent.getsockname()[1]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield SshDevice(root / "ssh_config", home, port)
    server.terminate()
    server.wait(timeout=10)
    silent.close()


def _udp_sent() -> int:
    """UDP datagrams this machine has sent (a DNS query would be one)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("OutDatagrams")])


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = pipeline_main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


@pytest.mark.slow
def test_deploy_benchmark_evaluate_and_report_over_ssh(
    ssh_device: SshDevice, folder_copy: Path, device_python: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    python = device_python("litert-numpy2")
    args = ssh_device.args(python)
    # a phone variant too: it takes RGB where the others take gray, so the device gets its own test images
    assert _run(["convert", str(folder_copy), "--target", "mediapipe", "--precision", "int8"], capsys)[0] == 0
    assert _run(["deploy", str(folder_copy), "--to", "device", *args], capsys)[0] == 0
    deployed = ssh_device.home / "edge-pipeline" / "fmnist-cnn"
    assert (deployed / "runtime" / "edge_runtime" / "predictor.py").is_file()
    assert not (deployed / "model" / "model.keras").exists() and not (deployed / "model" / "edge_runtime").exists()
    manifest = json.loads((deployed / ".edge-pipeline-deploy").read_text())["files"]
    assert {
        f"model/{name}" for name in ("model_int8.tflite", "model_mixed.tflite", "labels.txt", "metadata.json")
    } <= set(manifest)
    assert not [p for p in deployed.parent.iterdir() if p.name.startswith(".")]  # no temporaries left

    bench = ["benchmark", str(folder_copy), "--on", "device", "--threads", "1,2", "--runs", "20", "--warmup", "2"]
    assert _run([*bench, *args], capsys)[0] == 0
    device = json.loads((folder_copy / "benchmark.json").read_text())["devices"]["device"]
    assert device["facts"]["machine"] == os.uname().machine and device["facts"]["interpreter"]["name"] == "litert"
    assert device["facts"]["cores"] == os.cpu_count() and device["facts"]["python"]
    for row in device["variants"].values():
        assert 0 < row["threads"]["1"]["p50_ms"] < 1000 and row["threads"]["2"]["runs"] == 20

    code, _ = _run(["evaluate", str(folder_copy), "--on", "device", "--samples", "200", *args], capsys)
    assert code == 0
    drift = json.loads((folder_copy / "drift.json").read_text())
    on_device = drift["devices"]["device"]
    assert on_device["samples"] == 200 and "variants" in drift  # this machine's numbers stay beside the device's
    assert "mediapipe-int8" in on_device["variants"] and "int8" in on_device["variants"]
    for row in on_device["variants"].values():
        assert row["agreement_with_here"] == 1.0 and 0.5 < row["accuracy"] <= 1.0

    assert _run(["benchmark", str(folder_copy), "--runs", "5", "--threads", "1"], capsys)[0] == 0  # here again
    assert "device" in json.loads((folder_copy / "benchmark.json").read_text())["devices"]
    assert _run(["report", str(folder_copy), "--device", "device", "--samples", "0"], capsys)[0] == 0
    report = (folder_copy / "report.md").read_text()
    assert "## Devices" in report and "**For device (" in report and "same class as this machine" in report


@pytest.mark.slow
def test_the_emulated_pi_over_ssh_reports_aarch64(
    ssh_device: SshDevice, folder_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_runtime_compat import _emulator

    python = _emulator().python("litert")  # type: ignore[attr-defined]
    args = [*ssh_device.args(python), "--device-name", "pi5"]
    bench = ["benchmark", str(folder_copy), "--on", "device", "--threads", "1", "--runs", "3", "--warmup", "1"]
    assert _run([*bench, *args], capsys)[0] == 0
    assert _run(["evaluate", str(folder_copy), "--on", "device", "--samples", "60", *args], capsys)[0] == 0
    pi = json.loads((folder_copy / "benchmark.json").read_text())["devices"]["pi5"]
    assert pi["facts"]["machine"] == "aarch64" and pi["facts"]["model"] == "Raspberry Pi 5 Model B Rev 1.0"
    checked = json.loads((folder_copy / "drift.json").read_text())["devices"]["pi5"]["variants"]
    assert all(row["agreement_with_here"] == 1.0 for row in checked.values()), checked
    assert _run(["report", str(folder_copy), "--device", "pi5", "--samples", "0"], capsys)[0] == 0
    report = (folder_copy / "report.md").read_text()
    assert "**For pi5 (aarch64, Raspberry Pi 5 Model B Rev 1.0 (Cortex-A76)" in report


def test_an_unknown_host_is_one_line_and_sends_nothing(folder_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before_udp, before = _udp_sent(), folder_digest(folder_copy)
    code, err = _run(["benchmark", str(folder_copy), "--on", "no-such..host", "--python", "python3"], capsys)
    assert code == 1 and len(err) == 1 and "unknown host 'no-such..host'" in err[0], err
    assert _udp_sent() == before_udp and folder_digest(folder_copy) == before  # no DNS query went out


@pytest.mark.parametrize(
    ("host", "extra", "message"),
    [
        ("nobody-home", [], "connection refused"),
        ("stranger", [], "authentication failed"),
        ("impostor", [], "its host key is not in known_hosts or has changed"),
        ("silent", ["--timeout", "3"], "took longer than --timeout 3 s"),
        ("device", ["--python", "/no/python3"], "'/no/python3' not found there"),
        ("device", ["--python", "/usr/bin/python3"], "has no numpy; run with --setup"),
    ],
)
def test_device_failures_are_one_line(
    ssh_device: SshDevice, folder_copy: Path, capsys: pytest.CaptureFixture[str], host: str, extra: list, message: str
) -> None:
    before = folder_digest(folder_copy)
    argv = ["deploy", str(folder_copy), "--to", host, "--ssh-command", ssh_device.command, *extra]
    code, err = _run(argv, capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith("edge-pipeline: error: ") and message in err[0], err
    assert folder_digest(folder_copy) == before


def test_no_interpreter_on_the_device_suggests_setup(
    ssh_device: SshDevice, folder_copy: Path, device_python: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ssh_device.args(device_python("no-interpreter"))
    code, err = _run(["deploy", str(folder_copy), "--to", "device:~/no-interpreter", *args], capsys)
    assert code == 1 and len(err) == 1 and "no TFLite interpreter" in err[0] and "--setup" in err[0], err


DYING_PYTHON = """#!/bin/sh
# A device that goes away while timing its second variant: the ssh session's sshd process is killed.
case "$*" in
  *"bench model_float16"*)
    pid=$$
    while [ "$pid" -gt 1 ]; do
      case "$(cat /proc/$pid/comm)" in sshd*) kill -9 "$pid"; sleep 5; exit 1;; esac
      pid=$(cut -d' ' -f4 /proc/$pid/stat)
    done;;
esac
exec {python} "$@"
"""


def test_a_device_that_dies_mid_run_is_one_line_and_changes_nothing(
    ssh_device: SshDevice,
    folder_copy: Path,
    device_python: Callable[[str], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrapper = tmp_path / "dying-python"
    wrapper.write_text(DYING_PYTHON.format(python=device_python("litert-numpy2")))
    wrapper.chmod(0o755)
    before = folder_digest(folder_copy)
    argv = ["benchmark", str(folder_copy), "--on", "device:~/dying", "--runs", "5", *ssh_device.args(wrapper)]
    code, err = _run(argv, capsys)
    assert code == 1 and len(err) == 1 and "connection was lost during timing model_float16.tflite" in err[0], err
    assert folder_digest(folder_copy) == before


def test_names_with_spaces_and_quotes_cannot_inject(
    ssh_device: SshDevice,
    folder_copy: Path,
    device_python: Callable[[str], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    odd = tmp_path / 'it\'s a "model" $(touch pwned)'
    shutil.copytree(folder_copy, odd)
    target = 'device:~/edge pipeline/it\'s "x"; touch pwned/model-1'
    assert _run(["deploy", str(odd), "--to", target, *ssh_device.args(device_python("litert-numpy2"))], capsys)[0] == 0
    landed = ssh_device.home / "edge pipeline" / 'it\'s "x"; touch pwned' / "model-1"
    assert (landed / "model" / "labels.txt").is_file() and (landed / "runtime" / "edge_runtime" / "cli.py").is_file()
    assert not list(ssh_device.home.rglob("pwned")) and not (ssh_device.home / "edge").exists()


def test_a_full_disk_is_one_line_and_keeps_what_was_there(
    ssh_device: SshDevice,
    folder_copy: Path,
    device_python: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    small = ssh_device.home / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(small)], check=False).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        (small / "model").mkdir()
        (small / "model" / "kept.txt").write_text("an earlier deployment")
        argv = [
            "deploy",
            str(folder_copy),
            "--to",
            "device:~/small/fresh",
            *ssh_device.args(device_python("litert-numpy2")),
        ]
        code, err = _run(argv, capsys)
        assert code == 1 and len(err) == 1 and "the disk is full" in err[0], err
        assert [p.name for p in small.iterdir()] == ["model"] and (small / "model" / "kept.txt").is_file()
        # and a directory deploy did not make is never replaced, full disk or not
        code, err = _run([*argv[:3], "device:~/small/model", *argv[4:]], capsys)
        assert code == 1 and "exists and was not made by edge-pipeline deploy" in err[0], err
        assert (small / "model" / "kept.txt").read_text() == "an earlier deployment"
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.slow
def test_setup_makes_a_venv_from_the_devices_package_index(
    ssh_device: SshDevice, folder_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deploy", str(folder_copy), "--to", "device:~/set-up", "--ssh-command", ssh_device.command, "--setup"]
    assert _run(argv, capsys)[0] == 0
    venv = ssh_device.home / "edge-pipeline" / "venv" / "bin" / "python"
    assert venv.is_file()
    # Later commands find that venv without --python.
    bench = ["benchmark", str(folder_copy), "--on", "device:~/set-up", "--runs", "3", "--threads", "1"]
    assert _run([*bench, "--ssh-command", ssh_device.command], capsys)[0] == 0
    facts = json.loads((folder_copy / "benchmark.json").read_text())["devices"]["device"]["facts"]
    assert facts["interpreter"]["name"] == "litert"


@pytest.mark.slow
def test_run_on_a_device_does_it_all(
    ssh_device: SshDevice, tmp_path: Path, device_python: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "quick"
    argv = ["run", "--limit", "600", "--epochs", "1", "--output", str(folder), "--max-drop", "100", "--samples", "0"]
    argv += ["--continue"]  # one epoch on 600 images may end near chance; this test is about the device
    argv += ["--precision", "float32", "--precision", "int8", "--threads", "1", "--runs", "5", "--rounds", "1"]
    argv += ["--on", "device", "--device-samples", "100", *ssh_device.args(device_python("litert-numpy2"))]
    assert _run(argv, capsys)[0] == 0
    assert set(json.loads((folder / "benchmark.json").read_text())["devices"]["device"]["variants"]) == {
        "float32",
        "int8",
    }
    assert json.loads((folder / "drift.json").read_text())["devices"]["device"]["samples"] == 100
    report = (folder / "report.md").read_text()  # a one-epoch model is refused as near chance, on any device
    assert "## Devices" in report and "### device" in report and "Do not ship" in report


@pytest.mark.slow
def test_a_variant_the_device_cannot_run_is_a_row_with_the_reason(
    ssh_device: SshDevice, folder_copy: Path, device_python: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*ssh_device.args(device_python("tflite-runtime-numpy1")), "--device-name", "legacy"]
    bench = ["benchmark", str(folder_copy), "--on", "device:~/legacy", "--threads", "1", "--runs", "5"]
    assert _run([*bench, *args], capsys)[0] == 0
    assert _run(["evaluate", str(folder_copy), "--on", "device:~/legacy", "--samples", "50", *args], capsys)[0] == 0
    timed = json.loads((folder_copy / "benchmark.json").read_text())["devices"]["legacy"]
    assert timed["facts"]["interpreter"]["name"] == "tflite-runtime" and timed["facts"]["numpy"].startswith("1.")
    assert "needs TFLite runtime 2.17.0" in timed["variants"]["dynamic"]["error"]
    assert "threads" in timed["variants"]["int8"] and "threads" in timed["variants"]["mixed"]
    checked = json.loads((folder_copy / "drift.json").read_text())["devices"]["legacy"]["variants"]
    assert "error" in checked["dynamic"] and checked["mixed"]["agreement_with_here"] > 0.95
    assert _run(["report", str(folder_copy), "--device", "legacy", "--samples", "0"], capsys)[0] == 0
    report = (folder_copy / "report.md").read_text()
    # the pick for legacy leaves out what it cannot run; this machine's own pick (dynamic) is shown beside it
    headline, here = report.split("\n\n")[1:3]
    assert headline.startswith("**For legacy") and "Ship model_dynamic" not in headline, headline
    assert here.startswith("- On this machine") and "Ship model_dynamic" in here, here
    assert "cannot run: " in report

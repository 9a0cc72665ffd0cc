"""A model folder is untrusted input: every hostile case is one line and exit 1, nothing leaks or runs or hangs.

Real files and real processes: each case runs `edge-runtime` (or `edge-pipeline deploy`) as a process, and
its peak memory is read from the kernel (wait4). The device of the deploy cases is a stand-in `ssh` that
runs the remote command here, in a shell, with HOME pointed at a scratch folder: never the real home.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.bad_files import zip_with_many_members
from tests.conftest import ROOT, folder_digest

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
BIN = Path(sys.executable).parent
ESC = "\x1b"
MAX_RSS_MB = 1024


@dataclass
class Run:
    code: int
    out: str
    err: list[str]
    peak_mb: float


# Runs a command, then writes its peak resident memory (the kernel's count for that one child) to argv[1].
MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """A real process, its exit code, output and peak memory; it must never outlive `timeout`."""
    import tempfile

    with tempfile.NamedTemporaryFile("r") as peak:
        try:
            done = subprocess.run(
                [sys.executable, "-c", MEASURE, peak.name, *argv],
                capture_output=True,
                env={**os.environ, **(env or {})},
                cwd=ROOT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{argv} hung for {timeout} s")
        peak_kb = int(peak.read() or 0)
    lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return Run(done.returncode, done.stdout.decode("utf-8", "replace"), lines, peak_kb / 1024)


def runtime(*args: str) -> list[str]:
    return [str(BIN / "edge-runtime"), *args]


@dataclass
class Workspace:
    root: Path
    folder: Path  # a copy of the shipped model folder
    image: Path  # a good image

    def edit(self, change: Callable[[dict], None]) -> None:
        path = self.folder / "metadata.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    def bare(self, content: bytes, name: str = "model.tflite") -> Path:
        """A .tflite alone in a folder of its own (no metadata.json beside it): its own metadata speaks."""
        place = self.root / "bare"
        place.mkdir(exist_ok=True)
        (place / name).write_bytes(content)
        return place / name


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    folder = tmp_path / "fashion-mnist-cnn"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.png", "model.keras", "report.*"))
    image = tmp_path / "bag.png"
    shutil.copy(SHIPPED / "samples" / "bag.jpg", tmp_path / "bag.jpg")
    Image.open(tmp_path / "bag.jpg").save(image)
    return Workspace(tmp_path, folder, image)


# --- hostile files ----------------------------------------------------------------------------------


def with_zip(content: bytes, name: str, data: bytes, method: int, claimed: int | None = None) -> bytes:
    """The model's bytes with a zip of one member appended (its header may claim another size)."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED if method == 99 else method) as archive:
        archive.writestr(name, data)
    raw = bytearray(stream.getvalue())
    if claimed is not None:  # the local header's and the central directory's uncompressed size
        struct.pack_into("<I", raw, 22, claimed)
        central = raw.rfind(b"PK\x01\x02")
        struct.pack_into("<I", raw, central + 24, claimed)
    if method == 99:
        struct.pack_into("<H", raw, 8, 99)
        struct.pack_into("<H", raw, raw.rfind(b"PK\x01\x02") + 10, 99)
    return content + bytes(raw)


def png_bomb(path: Path, width: int = 9000, height: int = 9000) -> None:
    """A real RGB PNG of 81 megapixels (under Pillow's own limit), a few hundred KB on disk."""
    compressor, row = zlib.compressobj(9), b"\x00" + b"\x00" * (3 * width)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\nshowpage\n"


def _set_input(key: str, value: object) -> Callable[[dict], None]:
    return lambda data: data["input"].__setitem__(key, value)


def _fifo(ws: Workspace) -> list[str]:
    os.mkfifo(ws.root / "x.png")
    return runtime("predict", str(ws.folder), str(ws.root / "x.png"))


def _sparse(ws: Workspace) -> list[str]:
    path = ws.folder / "metadata.json"
    with open(path, "r+b") as stream:
        stream.truncate(200 << 20)  # 200 MB, sparse: st_size says it, nothing is written
    return runtime("predict", str(ws.folder), str(ws.image))


def _metadata_case(change: Callable[[dict], None]) -> Callable[[Workspace], list[str]]:
    def setup(ws: Workspace) -> list[str]:
        ws.edit(change)
        return runtime("predict", str(ws.folder), str(ws.image))

    return setup


def _symlinked(name: str) -> Callable[[Workspace], list[str]]:
    def setup(ws: Workspace) -> list[str]:
        secret = ws.root / "secret"
        secret.write_bytes((ws.folder / name).read_bytes())
        (ws.folder / name).unlink()
        (ws.folder / name).symlink_to(secret)
        return runtime("predict", str(ws.folder), str(ws.image))

    return setup


def _bare_labels_symlink(ws: Workspace) -> list[str]:
    model = ws.bare(_without_metadata((ws.folder / "model_int8.tflite").read_bytes()))
    (ws.root / "secret.txt").write_text("\n".join(f"secret {i}" for i in range(10)))
    (model.parent / "labels.txt").symlink_to(ws.root / "secret.txt")
    return runtime("predict", str(model), str(ws.image))


def _without_metadata(content: bytes) -> bytes:
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(content))
    model.metadata = [m for m in model.metadata or [] if m.name in (b"min_runtime_version", "min_runtime_version")]
    return bytes(fb.convert_object_to_bytearray(model))


def _zip_case(method: int, size: int, claimed: int | None = None) -> Callable[[Workspace], list[str]]:
    def setup(ws: Workspace) -> list[str]:
        content = (ws.folder / "model_int8.tflite").read_bytes()
        model = ws.bare(with_zip(content, "labels.txt", b"\0" * size, method, claimed))
        return runtime("predict", str(model), str(ws.image))

    return setup


FAILING: list[tuple[str, Callable[[Workspace], list[str]], str]] = [
    ("metadata.json of 200 MB", _sparse, "over the 4 MB limit"),
    ("--labels /dev/zero", lambda ws: runtime("predict", str(ws.folder), str(ws.image), "--labels", "/dev/zero"),
     "is a character device"),
    ("a FIFO named x.png", _fifo, "is a FIFO"),
    ("EPS content named x.png", lambda ws: [*runtime("predict", str(ws.folder)), _write(ws.root / "x.png", EPS)],
     "not an image edge_runtime reads"),
    ("a PNG of 81 megapixels", lambda ws: [*runtime("predict", str(ws.folder)), _bomb(ws.root / "big.png")],
     "over the 256 MB limit"),
    ("mean NaN", _metadata_case(_set_input("mean", float("nan"))), "input.mean must be a finite number"),
    ("std 0", _metadata_case(_set_input("std", 0)), "input.std must be a number above 0"),
    ("std NaN", _metadata_case(_set_input("std", float("nan"))), "input.std must be a finite number"),
    ("std Infinity", _metadata_case(_set_input("std", float("inf"))), "input.std must be a finite number"),
    ('invert "false"', _metadata_case(_set_input("invert", "false")), "input.invert must be true or false"),
    ("height Infinity", _metadata_case(_set_input("height", float("inf"))), "input.height must be a whole number"),
    ("negative schema", _metadata_case(lambda d: d.__setitem__("schema", -1)), "'schema' must be a whole number"),
    ("blank sha256", _metadata_case(lambda d: d["variants"]["dynamic"].__setitem__("sha256", "")),
     "variants.dynamic.sha256 must be a sha256"),
    ("variant file json.py", _metadata_case(lambda d: d["variants"]["int8"].__setitem__("file", "json.py")),
     "variants.int8.file must be 'model_int8.tflite'"),
    ("metadata.json a symlink out", _symlinked("metadata.json"), "resolves outside its model folder"),
    ("a variant a symlink out", _symlinked("model_dynamic.tflite"), "resolves outside its model folder"),
    ("labels.txt beside a bare file, a symlink out", _bare_labels_symlink, "resolves outside its model folder"),
]  # fmt: skip


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _bomb(path: Path) -> str:
    png_bomb(path)
    return str(path)


@pytest.mark.parametrize(("case", "setup", "message"), FAILING, ids=[c[0] for c in FAILING])
def test_hostile_input_is_one_line_and_exit_1(ws: Workspace, case: str, setup: Callable, message: str) -> None:
    argv = setup(ws)
    before = folder_digest(ws.folder) if case != "metadata.json of 200 MB" else None
    done = run(argv, timeout=60)
    errors = [line for line in done.err if line.startswith("edge-runtime: error: ")]
    assert done.code == 1 and len(errors) == 1 and message in errors[0], done.err
    assert "Traceback" not in "\n".join(done.err) and done.peak_mb < MAX_RSS_MB, done.peak_mb
    assert "secret" not in done.out
    if before is not None:
        assert folder_digest(ws.folder) == before


def _many_members(ws: Workspace) -> list[str]:
    """A real zip of a million empty members after the model: 713 MB and 8 s to list before its end record was
    read first."""
    zipped = ws.root / "many.zip"
    zip_with_many_members(zipped, {"labels.txt": b"a\nb\n"}, 1_000_000)
    model = ws.bare((ws.folder / "model_int8.tflite").read_bytes() + zipped.read_bytes())
    return runtime("predict", str(model), str(ws.image))


WARNING: list[tuple[str, Callable[[Workspace], list[str]], str]] = [
    ("labels zip member in bzip2, 64 MB", _zip_case(zipfile.ZIP_BZIP2, 64 << 20), "not stored or deflate"),
    ("labels zip with an unknown method", _zip_case(99, 100), "not stored or deflate"),
    ("labels zip whose header lies about its size", _zip_case(zipfile.ZIP_DEFLATED, 64 << 20, claimed=100),
     "'labels.txt' cannot be read"),
    ("labels zip of 64 MB that says so", _zip_case(zipfile.ZIP_DEFLATED, 64 << 20), "over 4,194,304"),
    ("labels zip of a million members", _many_members, "declares 1,000,001 files, over the limit of 16"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "setup", "message"), WARNING, ids=[c[0] for c in WARNING])
def test_unreadable_embedded_metadata_is_a_warning_and_a_normal_prediction(
    ws: Workspace, case: str, setup: Callable, message: str
) -> None:
    started = time.perf_counter()
    done = run(setup(ws), timeout=60)
    warnings = [line for line in done.err if line.startswith("edge-runtime: warning: ")]
    assert done.code == 0 and any(message in line for line in warnings), done.err
    assert "bag.png" in done.out and done.peak_mb < MAX_RSS_MB and time.perf_counter() - started < 30


def test_control_characters_never_reach_the_terminal_raw(ws: Workspace) -> None:
    """Labels, the model's name and image names with ESC[2J and an OSC 52 clipboard write: escaped in tables."""
    clipboard = f"{ESC}]52;c;cm0gLXJmIH4K\a"
    ws.edit(lambda d: d.update(name=f"evil{clipboard}", labels=[f"{ESC}[2Jwiped{i}" for i in range(10)]))
    odd = ws.root / f"photo{ESC}[31m.png"
    shutil.copy(ws.image, odd)
    table = run(runtime("predict", str(ws.folder), str(odd)))
    info = run(runtime("info", str(ws.folder)))
    for done in (table, info):
        assert done.code == 0 and ESC not in done.out and ESC not in "".join(done.err), done.err
    assert "\\x1b[2Jwiped" in table.out and "photo\\x1b[31m.png" in table.out and "evil\\x1b]52" in info.out
    exact = json.loads(run(runtime("predict", str(ws.folder), str(odd), "--json")).out)
    assert exact[0]["top_k"][0]["label"].startswith(f"{ESC}[2Jwiped") and exact[0]["image"] == str(odd)


def test_rich_markup_in_labels_is_shown_not_parsed(ws: Workspace) -> None:
    """Labels with `[/]` crashed evaluate's table after drift.json was written: now they print as they are."""
    from rich.console import Console

    from pipeline.measure.evaluate import DriftResult
    from pipeline.output.display import rich_table

    drift = json.loads((ws.folder / "drift.json").read_text())
    for row in drift["variants"].values():
        row["per_class"][0]["label"] = "[/] [bold]x"
    stream = io.StringIO()
    Console(file=stream, width=200).print(rich_table(DriftResult.from_dict(drift, ws.folder).table()))
    assert "[/] [bold]x" in stream.getvalue()


def test_a_left_over_temporary_is_never_a_candidate(ws: Workspace) -> None:
    """A temporary of a killed commit that sorts first is never "the folder's first choice"."""
    damaged = bytearray((ws.folder / "model_float32.tflite").read_bytes())
    damaged[100:200] = b"\xff" * 100
    (ws.folder / ".model_float32.tmp-0abc.tflite").write_bytes(bytes(damaged))
    (ws.folder / "model_a.tflite.tmp").write_bytes(bytes(damaged))
    done = run(runtime("predict", str(ws.folder), str(ws.image)))
    assert done.code == 0 and "using model_dynamic.tflite" in done.err[0], done.err


# --- deploy: a stand-in ssh and a scratch home ------------------------------------------------------

STAND_IN_SSH = """#!/bin/sh
# A stand-in for ssh: skips its options up to `--` and the destination, then runs the remote command here,
# in a shell, with HOME pointed at a scratch folder (never the real home).
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift 2
cd {home} && HOME={home} exec /bin/sh -c "$1"
"""


@dataclass
class Device:
    home: Path
    ssh: Path

    def deploy(self, folder: Path, to: str = "device", *extra: str) -> Run:
        argv = [str(BIN / "edge-pipeline"), "deploy", str(folder), "--to", to, "--ssh-command", str(self.ssh)]
        return run([*argv, "--python", sys.executable, *extra])


@pytest.fixture
def device(tmp_path: Path) -> Device:
    home = tmp_path / "device-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA... the device's only way in\n")
    (home / "photos").mkdir()
    (home / "photos" / "holiday.jpg").write_bytes(b"irreplaceable")
    ssh = tmp_path / "stand-in-ssh"
    ssh.write_text(STAND_IN_SSH.format(home=home))
    ssh.chmod(0o755)
    return Device(home, ssh)


def _home_intact(device: Device) -> None:
    assert (device.home / ".ssh" / "authorized_keys").read_text().startswith("ssh-ed25519")
    assert (device.home / "photos" / "holiday.jpg").read_bytes() == b"irreplaceable"


@pytest.mark.parametrize(
    ("case", "to", "change", "message"),
    [
        ("name ..", "device", lambda d: d.update(name=".."), "is not a safe directory name on a device"),
        ("name with a slash", "device", lambda d: d.update(name="../x"), "'name' must be a name without '/'"),
        ("--to HOST:~", "device:~", None, "DIR must end in a directory name of its own"),
        ("--to HOST:.", "device:.", None, "DIR must end in a directory name of its own"),
        ("--to HOST:~/x/..", "device:~/x/..", None, "DIR must end in a directory name of its own"),
        ("--to an existing directory", "device:~/photos", None, "exists and was not made by edge-pipeline deploy"),
        ("--to a file", "device:photos/holiday.jpg", None, "exists and was not made by edge-pipeline deploy"),
        ("a variant named json.py", "device", lambda d: d["variants"]["int8"].update(file="json.py"), "must be"),
    ],
)
def test_deploy_only_into_what_deploy_made(
    ws: Workspace, device: Device, case: str, to: str, change: Callable | None, message: str
) -> None:
    if change is not None:
        ws.edit(change)
    done = device.deploy(ws.folder, to)
    errors = [line for line in done.err if line.startswith("edge-pipeline: error: ")]
    assert done.code == 1 and len(errors) == 1 and message in errors[0], done.err
    _home_intact(device)


def test_a_deploy_replaces_only_its_own_earlier_deploy(ws: Workspace, device: Device) -> None:
    assert device.deploy(ws.folder, "device:~/pi/model").code == 0
    deployed = device.home / "pi" / "model"
    assert (deployed / ".edge-pipeline-deploy").is_file() and (deployed / "model" / "model_int8.tflite").is_file()
    assert device.deploy(ws.folder, "device:~/pi/model").code == 0  # its own marker: replaced
    (device.home / "pi" / "mine").mkdir()
    (device.home / "pi" / "mine" / "notes.txt").write_text("mine")
    assert device.deploy(ws.folder, "device:~/pi/mine").code == 1
    assert (device.home / "pi" / "mine" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (device.home / "pi").iterdir()) == ["mine", "model"]  # no temporaries left
    _home_intact(device)


def test_code_in_a_model_folder_never_runs_on_the_device(ws: Workspace, device: Device) -> None:
    """A folder carrying modules `python -m edge_runtime` imports: none is copied, none is imported."""
    sentinel = device.home / "PWNED"
    for module in ("json", "numpy", "edge_runtime", "encodings", "sitecustomize", "usercustomize"):
        (ws.folder / f"{module}.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    (ws.folder / "edge_runtime").mkdir()
    (ws.folder / "edge_runtime" / "__init__.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    assert device.deploy(ws.folder, "device:~/safe").code == 0
    deployed = device.home / "safe"
    copied = sorted(str(p.relative_to(deployed)) for p in deployed.rglob("*") if p.is_file())
    assert all(
        name == ".edge-pipeline-deploy"
        or name.startswith("runtime/edge_runtime/")
        or name.startswith("model/model_")
        or name in ("model/labels.txt", "model/metadata.json")
        for name in copied
    ), copied
    # and modules that land in the device's model directory some other way are not imported either
    for module in ("runpy", "json", "numpy", "argparse"):
        (deployed / "model" / f"{module}.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    bench = [str(BIN / "edge-pipeline"), "benchmark", str(ws.folder), "--on", "device:~/safe", "--runs", "2"]
    done = run(
        [*bench, "--threads", "1", "--warmup", "0", "--ssh-command", str(device.ssh), "--python", sys.executable]
    )
    assert done.code == 0, done.err
    assert not sentinel.exists()


@pytest.mark.parametrize("name", ["labels.txt", "model_int8.tflite", "metadata.json"])
def test_deploy_never_follows_a_symlink_out_of_the_folder(ws: Workspace, device: Device, name: str) -> None:
    secret = ws.root / "host-secret"
    secret.write_bytes((ws.folder / name).read_bytes())  # the same bytes: only where it lies gives it away
    (ws.folder / name).unlink()
    (ws.folder / name).symlink_to(secret)
    done = device.deploy(ws.folder, "device:~/leak")
    assert done.code == 1 and "resolves outside its model folder" in done.err[-1], done.err
    assert not (device.home / "leak").exists()
    _home_intact(device)


def test_deploy_sends_the_device_its_own_pick_and_leaves_the_folder_alone(ws: Workspace, device: Device) -> None:
    ws.edit(lambda d: d.update(recommended="dynamic", device_picks={"kitchen-pi": "int8"}))
    before = (ws.folder / "metadata.json").read_bytes()
    done = device.deploy(ws.folder, "device:~/pi/model", "--device-name", "kitchen-pi")
    assert done.code == 0, done.err
    sent = json.loads((device.home / "pi" / "model" / "model" / "metadata.json").read_text())
    assert sent["recommended"] == "int8"  # what report --device kitchen-pi picked for it
    assert (ws.folder / "metadata.json").read_bytes() == before
    done = device.deploy(ws.folder, "device:~/pi/other", "--device-name", "garage-pi")
    assert (
        json.loads((device.home / "pi" / "other" / "model" / "metadata.json").read_text())["recommended"] == "dynamic"
    )

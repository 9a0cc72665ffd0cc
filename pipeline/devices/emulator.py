"""An emulated Raspberry Pi: Raspberry Pi OS's userland (Debian bookworm arm64, Python 3.11) under qemu-user.

`python -m pipeline.devices.emulator build` makes it once into a cache folder (outside git);
`python -m pipeline.devices.emulator check MODEL_DIR` (`make pi-check MODEL=...`) copies `edge_runtime/`
and the model folder's contract (pipeline.store.copies: never a symlink followed out of it) to a board
folder and runs `predict` and `bench` there with each interpreter.

How (measured on a Debian x86_64 machine, no root tricks, no binfmt):
- userland: `debootstrap --foreign --arch=arm64 --variant=minbase --include=python3`, then every
  downloaded package unpacked with `dpkg-deb -x` (no chroot, no second stage): 39 s;
- its Python: `QEMU_LD_PREFIX=ROOT qemu-aarch64-static ROOT/usr/bin/python3.11`;
- wheels: `pip install --target DIR --only-binary=:all: --platform manylinux_..._aarch64`;
- ai-edge-litert 2.3.0 crashes (SIGSEGV in `Interpreter()`) when it reads the host's x86
  /proc/cpuinfo. qemu-user looks up every path under QEMU_LD_PREFIX first, /proc/cpuinfo too,
  so a Raspberry Pi 5's cpuinfo at ROOT/proc/cpuinfo fixes it without a mount namespace;
- the CPU must be the Pi 5's Cortex-A76 (QEMU_CPU=cortex-a76): under qemu's default `max` CPU,
  which advertises SVE2/SME/i8mm in the auxiliary vector, ai-edge-litert 2.3.0 picks kernels
  that qemu 7.2 gets wrong: the cnn's int8 variant answered Bag/Pullover for every image (and the
  same image differently within a batch), while on cortex-a76 every score equals x86's.
Timings under emulation mean nothing; behaviour (which variant runs, what it answers) does.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.folder.reader import KERAS_FILE

from ..errors import FolderError
from ..store.copies import FolderCopy, copy_folder, copy_images

ROOT_DIR = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
# Per interpreter: the pip requirements and the wheel platform tags pip must be told exactly.
INTERPRETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "litert": (("numpy>=2", "pillow", "ai-edge-litert==2.3.0"), ("manylinux_2_27_aarch64", "manylinux_2_28_aarch64")),
    "tflite-runtime": (("numpy==1.26.4", "pillow==10.0.0", "tflite-runtime==2.14.0"), ("manylinux_2_34_aarch64",)),
}
COMMON_TAGS = ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
# The interpreter each wheels set pins, by the emulated Pi's name for it.
INTERPRETER_VERSIONS = {
    name: next(r.split("==")[1] for r in requirements if r.split("==")[0] in ("ai-edge-litert", "tflite-runtime"))
    for name, (requirements, _) in INTERPRETERS.items()
}
# /proc/cpuinfo of a Raspberry Pi 5 (Cortex-A76), as LiteRT's CPU probing expects on Arm.
_CORE = (
    "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
    "asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
    "CPU part\t: 0xd0b\nCPU revision\t: 1\n"
)
PI5_CPUINFO = "".join(f"processor\t: {i}\n{_CORE}\n" for i in range(4)) + (
    "Revision\t: d04170\nSerial\t\t: 0000000000000000\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"
)
WRAPPER = """#!/bin/sh
# Raspberry Pi OS-like Python ({suite} arm64, 3.11) under qemu-user, with {name} on its path.
QEMU_CPU=cortex-a76 QEMU_LD_PREFIX={root} PYTHONPATH={wheels} exec qemu-aarch64-static {python} "$@"
"""


FACTS = """
import platform
model = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("Model")]
print(platform.machine(), "Python", platform.python_version(), *model[:1])
"""


class EmulatorError(Exception):
    """One line saying why the emulated Pi cannot be built or run here."""


def cache_dir() -> Path:
    override = os.environ.get("EDGE_PIPELINE_PI_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-pipeline" / f"pi-{SUITE}-arm64"


@dataclass(frozen=True)
class Emulator:
    """A built emulator: one wrapper script per interpreter, each a `python` for the board."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "root"

    def python(self, interpreter: str) -> Path:
        return self.home / "bin" / f"python-{interpreter}"

    @property
    def ready(self) -> bool:
        """Built, and its wrappers point here (a cache folder moved elsewhere gets them written again)."""
        return all(
            self.python(name).is_file() and str(self.root) in self.python(name).read_text() for name in INTERPRETERS
        )


def missing_tools() -> list[str]:
    needed = {"debootstrap": "debootstrap", "qemu-aarch64-static": "qemu-user-static", "dpkg-deb": "dpkg"}
    return sorted({package for tool, package in needed.items() if shutil.which(tool) is None})


def _run(command: list[str], what: str, timeout: float = 1800) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EmulatorError(f"{what} failed (exit {completed.returncode}): {tail[0]}")


def _build_root(target: Path, mirror: str | None) -> None:
    """Debian arm64 userland with python3, unpacked without chroot; renamed into place when whole."""
    staging = Path(tempfile.mkdtemp(prefix=".root-", dir=target.parent))
    try:
        _run(
            [
                "debootstrap",
                "--arch=arm64",
                "--foreign",
                "--variant=minbase",
                "--include=python3",
                SUITE,
                str(staging),
                *([mirror] if mirror else []),
            ],
            "debootstrap (arm64 userland)",
        )
        for package in sorted((staging / "var/cache/apt/archives").glob("*.deb")):
            _run(["dpkg-deb", "-x", str(package), str(staging)], f"unpacking {package.name}")
        (staging / "proc").mkdir(exist_ok=True)
        (staging / "proc" / "cpuinfo").write_text(PI5_CPUINFO)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_wheels(target: Path, interpreter: str) -> None:
    requirements, tags = INTERPRETERS[interpreter]
    staging = Path(tempfile.mkdtemp(prefix=f".{interpreter}-", dir=target.parent))
    platforms = [arg for tag in (*tags, *COMMON_TAGS) for arg in ("--platform", tag)]
    try:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(staging),
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                *platforms,
                *requirements,
            ],
            f"pip install of aarch64 wheels for {interpreter}",
        )
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build(home: Path | None = None, mirror: str | None = None, log: Callable[[str], None] = print) -> Emulator:
    """Build (or reuse) the emulated Pi in `home`; each part is made in a temporary folder and renamed."""
    emulator = Emulator(home or cache_dir())
    if emulator.ready:
        return emulator
    missing = missing_tools()
    if missing:
        raise EmulatorError(f"the emulated Pi needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
    emulator.home.mkdir(parents=True, exist_ok=True)
    if not (emulator.root / "usr/bin/python3.11").is_file():
        log(f"building Debian {SUITE} arm64 with Python 3.11 in {emulator.root} (about a minute)")
        shutil.rmtree(emulator.root, ignore_errors=True)
        _build_root(emulator.root, mirror or os.environ.get("EDGE_PIPELINE_PI_MIRROR"))
    (emulator.home / "bin").mkdir(exist_ok=True)
    for name in INTERPRETERS:
        wheels = emulator.home / "wheels" / name
        if not wheels.is_dir():
            log(f"installing aarch64 wheels for {name}: {' '.join(INTERPRETERS[name][0])}")
            wheels.parent.mkdir(exist_ok=True)
            _install_wheels(wheels, name)
        script = emulator.python(name)
        script.write_text(
            WRAPPER.format(
                suite=SUITE,
                name=name,
                root=shlex.quote(str(emulator.root)),
                wheels=shlex.quote(str(wheels)),
                python=shlex.quote(str(emulator.root / "usr/bin/python3.11")),
            )
        )
        script.chmod(0o755)
    return emulator


# --- the check ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    """One thing tried on the emulated board, and whether it held."""

    interpreter: str
    target: str  # "folder" or a variant file name
    held: bool
    detail: str


def _board(model_dir: Path, workdir: Path) -> tuple[Path, list[str], FolderCopy]:
    """edge_runtime/ and the model folder as deploy sends it (metadata.json and the files it records, without
    model.keras and pictures; never a symlink followed out of it), plus the folder's sample images."""
    board = workdir / "board"
    shutil.copytree(ROOT_DIR / "edge_runtime", board / "edge_runtime", ignore=shutil.ignore_patterns("__pycache__"))
    copied = copy_folder(model_dir, board / "model", keep=lambda name: name != KERAS_FILE and not name.endswith(".png"))
    samples = copy_images(model_dir / "samples", board / "samples", "samples")
    copied = FolderCopy([*(f"model/{name}" for name in copied.copied), *samples.copied], samples.skipped)
    if not samples.copied:
        from PIL import Image

        Image.new("RGB", (64, 64), (128, 128, 128)).save(board / "gray.png")
        return board, ["gray.png"], copied
    return board, samples.copied, copied


def _predict(python: Path, board: Path, target: str, images: list[str]) -> tuple[int, list[dict], str]:
    completed = subprocess.run(
        [str(python), "-m", "edge_runtime", "predict", target, *images, "--json", "--top-k", "1"],
        cwd=board,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        results = json.loads(completed.stdout) if completed.returncode == 0 else []
    except json.JSONDecodeError:
        results = []
    lines = [line for line in completed.stderr.splitlines() if line.startswith("edge-runtime:")]
    return completed.returncode, results, (lines[-1] if lines else completed.stderr.strip()[-300:])


def _host_top1(model_file: Path, board: Path, images: list[str]) -> list[str]:
    """Top-1 labels of this machine's edge_runtime on the same file: what the board must answer too."""
    from edge_runtime import Predictor

    predictor = Predictor(model_file)
    return [predictor.predict(board / image, top_k=1)[0].label for image in images]


def _check_variant(name: str, python: Path, board: Path, variant: Path, images: list[str]) -> CheckRow:
    code, results, message = _predict(python, board, f"model/{variant.name}", images)
    if code == 0:
        answers = [r["top_k"][0]["label"] for r in results]
        same = answers == _host_top1(variant, board, images)
        return CheckRow(
            name,
            variant.name,
            same,
            f"{results[0]['backend']}: top-1 "
            + ("as on this machine" if same else f"differs from this machine: {answers}"),
        )
    refused = "needs TFLite runtime" in message and "damaged" not in message
    return CheckRow(name, variant.name, refused, message.removeprefix("edge-runtime: error: "))


def _check_stream(name: str, python: Path, board: Path, images: list[str], expected: list[dict]) -> CheckRow:
    """The same images as a stream of frames on the board's stdin (`predict model -`): the same top-1."""
    framed = [(image, answer) for image, answer in zip(images, expected, strict=False)
              if image.lower().endswith((".jpg", ".jpeg", ".png"))]  # fmt: skip
    if not framed:
        return CheckRow(name, "folder (stream)", True, "no JPEG or PNG sample to stream")
    data = b"".join((board / image).read_bytes() for image, _ in framed)
    done = subprocess.run([str(python), "-m", "edge_runtime", "predict", "model", "-", "--jsonl", "--top-k", "1"],
                          cwd=board, input=data, capture_output=True, timeout=600, check=False)  # fmt: skip
    try:
        answers = [json.loads(line)["top_k"][0]["label"] for line in done.stdout.decode().splitlines()]
    except (ValueError, KeyError, IndexError):
        answers = []
    same = done.returncode == 0 and answers == [answer["top_k"][0]["label"] for _, answer in framed]
    detail = f"{len(answers)} frames on stdin, top-1 as the files" if same else done.stderr.decode()[-300:]
    return CheckRow(name, "folder (stream)", same, detail)


def check(model_dir: Path, emulator: Emulator) -> list[CheckRow]:
    """Predict with the folder default and with each variant, and bench, once per interpreter."""
    model_dir = Path(model_dir)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-pipeline-pi-") as workdir:
        board, images, copied = _board(model_dir, Path(workdir))
        detail = f"{len(copied.copied)} files copied" + "".join(f"; {line}" for line in copied.skipped)
        rows.append(CheckRow("host", "folder (copy)", True, detail))
        for name in INTERPRETERS:
            python = emulator.python(name)
            facts = subprocess.run([str(python), "-c", FACTS], capture_output=True, text=True, timeout=300, check=False)
            rows.append(
                CheckRow(
                    name, "platform", facts.stdout.startswith("aarch64"), facts.stdout.strip() or facts.stderr[-200:]
                )
            )
            code, results, message = _predict(python, board, "model", images)
            detail = f"{results[0]['model']} on {results[0]['backend']}" if code == 0 else message
            rows.append(CheckRow(name, "folder (predict)", code == 0, detail))
            rows.append(_check_stream(name, python, board, images, results))
            for variant in sorted((board / "model").glob("*.tflite")):
                rows.append(_check_variant(name, python, board, variant, images))
            bench = subprocess.run(
                [str(python), "-m", "edge_runtime", "bench", "model", "--warmup", "1", "--runs", "3", "--json"],
                cwd=board,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            ok = bench.returncode == 0
            rows.append(
                CheckRow(
                    name, "folder (bench)", ok, json.loads(bench.stdout)["model"] if ok else bench.stderr.strip()[-300:]
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("build", "check") or (args[0] == "check" and len(args) != 2):
        print("usage: python -m pipeline.devices.emulator build | check MODEL_DIR", file=sys.stderr)
        return 2
    try:
        emulator = build(log=lambda line: print(f"pi-check: {line}", file=sys.stderr))
        if args[0] == "build":
            print("\n".join(str(emulator.python(name)) for name in INTERPRETERS))
            return 0
        if not (Path(args[1]) / "metadata.json").is_file():
            print(f"pi-check: {args[1]}: not a model folder (no metadata.json)", file=sys.stderr)
            return 2
        rows = check(Path(args[1]), emulator)
    except (EmulatorError, FolderError, OSError, subprocess.TimeoutExpired) as error:
        print(f"pi-check: error: {error}", file=sys.stderr)
        return 1
    width = max(len(row.target) for row in rows)
    for row in rows:
        print(f"{'held' if row.held else 'FAILED':<6}  {row.interpreter:<14}  {row.target:<{width}}  {row.detail}")
    failed = sum(not row.held for row in rows)
    print(f"emulated Raspberry Pi (Debian {SUITE} arm64, Python 3.11): {len(rows) - failed} held, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The device's cost without the device: Arm instructions per image, counted on an emulated Raspberry Pi.

Timing under qemu means nothing, but counting the guest instructions it executes is exact: with one
interpreter thread, the Pi's own `/proc/cpuinfo` and `-cpu cortex-a76`, XNNPACK picks the kernels a real
Pi 5 runs (its int8 path executes SDOT dot-product instructions), and two identical runs give the same
count to the instruction. How (measured on Debian bookworm's qemu-user 7.2, the dynamic build; the
static one cannot load plugins):

- a TCG plugin (`qemu_plugin/insn_count.c`, compiled on first use with the system gcc, cached in
  `~/.cache/edge-pipeline/`) counts instructions inline per translation block, and SDOT/UDOT by encoding;
- the guest program marks each `invoke()` with `close()` of magic descriptors, so Python's start-up is
  never counted; the median over the invokes after the first is the variant's cost;
- each CPU gets its own prefix (the emulated Pi's userland, symlinked, with that board's /proc/cpuinfo:
  qemu-user looks every path up under the prefix first): XNNPACK chooses kernels by it, and a Cortex-A53
  told it has dot products dies with SIGILL;
- PYTHONHASHSEED=0, OPENBLAS_NUM_THREADS=1 (numpy would start a thread: the counter is per process), no
  .pyc writes, and argument and environment strings of fixed length, so the guest's heap is laid out the
  same way every run.

What the counts mean and do not: executed instructions, not cycles. No cache misses or memory stalls,
and a 16-MAC SDOT counts as one instruction, like a scalar add. Ratios between variants on one CPU
track latency ratios (MobileNetV2 1.0 224 on Cortex-A76: float32/int8 2.45x, published Pi 5 latency
10.9/4.0 ms = 2.7x; benchmarks/results/). Several threads would count spin-waits, not latency: one only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import statistics
import string
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PipelineError, UsageError
from .emulator import Emulator

PLUGIN_SOURCE = Path(__file__).resolve().parent / "qemu_plugin" / "insn_count.c"
ROOT_DIR = Path(__file__).resolve().parents[2]
MARKS = {"start": 1000003, "stop": 1000004, "group": 1000005}  # insn_count.c's magic descriptors
DEFAULT_INVOKES = 6  # the first warms up; the median of the other five is the count
QEMU = "qemu-aarch64"


class EmulationError(PipelineError):
    """The emulated Pi cannot count here (a tool is missing, or the emulator failed); one line."""


def _cpuinfo(part: str, variant: str, revision: str, features: str, bogomips: str, board: str, code: str) -> str:
    core = (
        f"BogoMIPS\t: {bogomips}\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
        f"CPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n"
    )
    cores = "".join(f"processor\t: {i}\n{core}\n" for i in range(4))
    return f"{cores}Revision\t: {code}\nSerial\t\t: 0000000000000000\nModel\t\t: {board}\n"


@dataclass(frozen=True)
class EmulatedCpu:
    """An Arm core qemu emulates, the Raspberry Pi it stands for, and the /proc/cpuinfo that board shows."""

    name: str  # qemu's -cpu
    alias: str
    board: str
    cpuinfo: str
    dot_product: bool  # ARMv8.2 SDOT/UDOT, which XNNPACK's int8 kernels use when /proc/cpuinfo says `asimddp`

    @property
    def device_name(self) -> str:
        """Where benchmark.json keeps its counts (never a real device's name: those are hosts)."""
        return f"emulated-{self.alias}"


A76 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
CPUS = {
    cpu.name: cpu
    for cpu in (
        EmulatedCpu(
            "cortex-a76", "pi5", "Raspberry Pi 5 Model B Rev 1.0",
            _cpuinfo("0xd0b", "0x4", "1", A76, "108.00", "Raspberry Pi 5 Model B Rev 1.0", "d04170"), True,
        ),
        EmulatedCpu(
            "cortex-a72", "pi4", "Raspberry Pi 4 Model B Rev 1.4",
            _cpuinfo("0xd08", "0x0", "3", "fp asimd evtstrm crc32 cpuid", "108.00", "Raspberry Pi 4 Model B Rev 1.4",
                     "c03114"), False,
        ),
        EmulatedCpu(
            "cortex-a53", "pi3", "Raspberry Pi 3 Model B+ or Zero 2 W",
            _cpuinfo("0xd03", "0x0", "4", "fp asimd evtstrm crc32 cpuid", "38.40",
                     "Raspberry Pi 3 Model B Plus Rev 1.3", "a020d3"), False,
        ),
    )
}  # fmt: skip
ALIASES = {"pi5": "cortex-a76", "pi4": "cortex-a72", "pi3": "cortex-a53", "zero2w": "cortex-a53"}


def resolve(text: str) -> EmulatedCpu:
    """A CPU by qemu's name or its board's alias (pi5, pi4, pi3, zero2w); a usage error otherwise."""
    key = str(text).strip().lower()
    key = ALIASES.get(key, ALIASES.get(key.removeprefix("emulated-"), key))
    if key not in CPUS:
        names = ", ".join([*CPUS, *ALIASES])
        raise UsageError(f"--emulate {text!r} is not one of {names}")
    return CPUS[key]


def missing_tools() -> list[str]:
    """Debian packages the counting needs that are not installed: qemu-user (dynamic, loads plugins), gcc."""
    needed = {QEMU: "qemu-user", "gcc": "gcc"}
    return sorted({package for tool, package in needed.items() if shutil.which(tool) is None})


def plugin(cache: Path) -> Path:
    """The compiled plugin, built on first use (and again when its source changes)."""
    missing = missing_tools()
    if missing:
        raise EmulationError(
            f"counting the emulated Pi's instructions needs {', '.join(missing)} (the dynamic qemu-aarch64: "
            f"qemu-user-static cannot load plugins): apt-get install --no-install-recommends {' '.join(missing)}"
        )
    source = PLUGIN_SOURCE.read_bytes()
    built = cache / "qemu-plugins" / f"insn_count-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if built.is_file():
        return built
    built.parent.mkdir(parents=True, exist_ok=True)
    staging = built.with_name(f".{built.name}.tmp-{os.getpid()}")
    command = ["gcc", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-o", str(staging), str(PLUGIN_SOURCE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise EmulationError(f"gcc could not build the qemu plugin: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    staging.replace(built)
    return built


def _prefix_ready(emulator: Emulator, prefix: Path, cpu: EmulatedCpu) -> bool:
    cpuinfo = prefix / "proc" / "cpuinfo"
    linked = (prefix / "usr").resolve() == (emulator.root / "usr").resolve()
    return linked and cpuinfo.is_file() and cpuinfo.read_text() == cpu.cpuinfo


def cpu_prefix(emulator: Emulator, cpu: EmulatedCpu) -> Path:
    """The emulated Pi's userland seen through one board's /proc/cpuinfo (symlinks to the shared root). Its links
    are relative: a cache moved as a whole keeps them; one whose links lead elsewhere is made again."""
    prefix = emulator.home / "cpus" / cpu.name
    if _prefix_ready(emulator, prefix, cpu):
        return prefix
    prefix.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cpu.name}.tmp-", dir=prefix.parent))
    (staging / "proc").mkdir()
    (staging / "proc" / "cpuinfo").write_text(cpu.cpuinfo)
    for entry in emulator.root.iterdir():
        if entry.name != "proc":
            (staging / entry.name).symlink_to(os.path.relpath(entry.resolve(), prefix.parent.resolve() / cpu.name))
    if not _prefix_ready(emulator, prefix, cpu):  # a second benchmark may have made it meanwhile: keep theirs
        shutil.rmtree(prefix, ignore_errors=True)
        with contextlib.suppress(OSError):  # lost the race to the other one's rename: theirs is the same
            staging.rename(prefix)
    shutil.rmtree(staging, ignore_errors=True)
    return prefix


# The program the emulated Pi runs: edge_runtime loads each file (its structural check and its refusals, as on a
# device), then every invoke() is counted between two marks; a third ends the file's group.
GUEST = string.Template(
    r"""
import json, os, sys
from edge_runtime.backends import load_interpreter
from edge_runtime.bench import fill_inputs
from edge_runtime.errors import EdgeRuntimeError
def mark(fd):
    try:
        os.close(fd)
    except OSError:
        pass
backend, invokes = sys.argv[1], int(sys.argv[2])
for path in sys.argv[3:]:
    try:
        interpreter, chosen = load_interpreter(path, 1, backend)
        fill_inputs(interpreter)
        for _ in range(invokes):
            mark($start)
            interpreter.invoke()
            mark($stop)
        print(json.dumps({"file": os.path.basename(path), "backend": chosen.label}), flush=True)
    except (EdgeRuntimeError, ValueError, RuntimeError) as error:
        print(json.dumps({"file": os.path.basename(path), "error": str(error).splitlines()[0]}), flush=True)
    mark($group)
"""
).substitute(MARKS)


def _groups(path: Path) -> list[list[tuple[int, int]]]:
    """The plugin's output: one list of (instructions, dot-product instructions) per file, in order."""
    groups: list[list[tuple[int, int]]] = [[]]
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line == "group":
            groups.append([])
        elif line != "end":
            counted, dots = line.split()
            groups[-1].append((int(counted), int(dots)))
    return groups[:-1]


def _row(report: dict[str, Any], group: list[tuple[int, int]]) -> dict[str, Any]:
    if "error" in report:
        return {"error": report["error"]}
    counts, dots = [c for c, _ in group], [d for _, d in group]
    later = counts[1:] or counts
    return {
        "backend": report["backend"],
        "instructions": int(statistics.median(later)),
        "dot_instructions": int(statistics.median(dots[1:] or dots)),
        "invokes": counts,
    }


@dataclass
class Run:
    """One guest process's inputs: the CPU's prefix, the interpreter's wheels, the files to count."""

    emulator: Emulator
    cpu: EmulatedCpu
    interpreter: str
    plugin: Path
    invokes: int = DEFAULT_INVOKES


def _scratch(run: Run, files: dict[str, bytes]) -> Path:
    """A fresh directory of a fixed-length name (so the guest's strings, and heap, are the same every run)."""
    parent = run.emulator.home / "scratch"
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    shutil.copytree(
        ROOT_DIR / "edge_runtime", scratch / "runtime" / "edge_runtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    (scratch / "model").mkdir()
    for name, content in files.items():
        (scratch / "model" / name).write_bytes(content)
    return scratch


def count(run: Run, files: dict[str, bytes], progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Instructions per invoke of each file (by name) under `run`; a file the interpreter refuses or dies on is
    a row with the reason, and the others are still counted."""
    scratch, results = _scratch(run, files), {}
    env = {
        "PYTHONPATH": f"{scratch}/runtime{os.pathsep}{run.emulator.home / 'wheels' / run.interpreter}",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
        "HOME": str(scratch), "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
    }  # fmt: skip
    remaining = list(files)
    try:
        while remaining:
            out = scratch / "counts.txt"
            argv = [QEMU, "-L", str(cpu_prefix(run.emulator, run.cpu)), "-cpu", run.cpu.name]
            argv += ["-plugin", f"{run.plugin},out={out}", str(run.emulator.root / "usr/bin/python3.11")]
            argv += ["-c", GUEST, run.interpreter, str(run.invokes), *(f"model/{name}" for name in remaining)]
            progress(f"{run.cpu.name}, {run.interpreter}: {len(remaining)} file(s)")
            done = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=1800, check=False)
            reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            for report, group in zip(reports, _groups(out), strict=False):
                results[report["file"]] = _row(report, group)
            if len(reports) >= len(remaining):
                break
            if done.returncode == 0:
                raise EmulationError(
                    f"the emulated Pi stopped early: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
                )
            crashed = remaining[len(reports)]
            results[crashed] = {"error": f"the interpreter crashed on it under emulation (exit {done.returncode})"}
            remaining = remaining[len(reports) + 1 :]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results

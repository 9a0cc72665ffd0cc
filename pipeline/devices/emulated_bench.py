"""`benchmark --emulate CPU`: every variant's Arm instructions per image on an emulated Raspberry Pi.

For each CPU (`cortex-a76`/`pi5`, `cortex-a72`/`pi4`, `cortex-a53`/`pi3`) and each interpreter the emulated Pi
has (ai-edge-litert 2.3, tflite-runtime 2.14), every variant runs with one thread under the Pi's own Python
(`pipeline.devices.instructions` says how and what the counts mean). benchmark.json keeps the counts under
`devices.emulated-<alias>`, marked `"kind": "emulated-instructions"` so that nothing reads them as
milliseconds; a variant an interpreter cannot run is a row with the reason, as on a real device.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..folder import BENCHMARK_JSON, FolderStore
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from ..store.commits import now
from . import emulator as emulated_pi
from . import instructions
from .instructions import DEFAULT_INVOKES, EmulatedCpu

KIND = "emulated-instructions"
INTERPRETERS = ("litert", "tflite-runtime")  # the emulated Pi's two wheels sets (pipeline.devices.emulator)


def _millions(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.3f}"


@dataclass(repr=False)
class EmulatedBenchmark(Shown):
    """One emulated CPU's instruction counts per interpreter and variant; prints as a table."""

    cpu: EmulatedCpu
    facts: dict[str, Any]
    settings: dict[str, Any]
    interpreters: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {version, variants}

    @property
    def name(self) -> str:
        return self.cpu.device_name

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "created_at": now(),
            "facts": self.facts,
            "settings": self.settings,
            "interpreters": self.interpreters,
        }

    def summary(self) -> str:
        return f"instructions per image on an emulated {self.cpu.name} ({self.cpu.alias})"

    def table(self) -> Table:
        names = list(self.interpreters)
        columns = ["variant"]
        for name in names:
            columns += [f"{name}: M instructions", "x float32", "M dot products"]
        variants = list(dict.fromkeys(v for data in self.interpreters.values() for v in data["variants"]))
        rows = []
        for variant in variants:
            cells = [variant]
            for name in names:
                row = self.interpreters[name]["variants"].get(variant, {})
                if "error" in row:
                    cells += ["cannot run", "-", "-"]
                    continue
                ratio = row.get("ratio_to_float32")
                cells += [_millions(row.get("instructions")), "-" if ratio is None else f"{ratio:.2f}x",
                          _millions(row.get("dot_instructions"))]  # fmt: skip
            rows.append(cells)
        title = f"instructions per image, emulated {self.cpu.name} ({self.cpu.board}), 1 thread"
        notes = [
            f"{v}: {self.interpreters[n]['variants'][v]['error']}"
            for n in names
            for v in variants
            if "error" in self.interpreters[n]["variants"].get(v, {})
        ]
        return Table(title, columns, rows, notes)


@dataclass(frozen=True)
class EmulateConfig:
    """Which folder, which emulated CPUs, how many invokes each variant gets (the first is not counted)."""

    folder: Path
    cpus: tuple[str, ...]
    invokes: int = DEFAULT_INVOKES
    interpreters: tuple[str, ...] = INTERPRETERS

    @property
    def resolved(self) -> list[EmulatedCpu]:
        return list(dict.fromkeys(instructions.resolve(cpu) for cpu in self.cpus))


def _qemu_version() -> str:
    done = subprocess.run([instructions.QEMU, "--version"], capture_output=True, text=True, check=False, timeout=60)
    return (done.stdout.splitlines() or ["unknown"])[0]


def _facts(cpu: EmulatedCpu) -> dict[str, Any]:
    return {
        "machine": "aarch64 (emulated)",
        "cpu": cpu.name,
        "model": f"{cpu.board}, emulated",
        "os": f"Debian {emulated_pi.SUITE} arm64, Python 3.11",
        "emulator": _qemu_version(),
        "host": platform.machine(),
    }


def _with_ratios(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each variant's instructions as a share of its own family's float32 (mediapipe against mediapipe)."""
    for name, row in rows.items():
        family = name.rsplit("-", 1)[0] + "-float32" if "-" in name else "float32"
        base = rows.get(family, rows.get("float32", {})).get("instructions")
        if base and row.get("instructions"):
            row["ratio_to_float32"] = row["instructions"] / base
    return rows


def benchmark_emulated(config: EmulateConfig, reporter: Reporter | None = None) -> list[EmulatedBenchmark]:
    """Count every variant on each emulated CPU with each interpreter; keep the counts in benchmark.json."""
    reporter = reporter or SilentReporter()
    cpus = config.resolved
    folder = FolderStore(config.folder)
    with folder.writing("benchmark --emulate"):
        metadata = folder.load()
        files = {v.file: folder.verified(v.file, metadata).read_bytes() for v in metadata.variants.values()}
        by_file = {v.file: name for name, v in metadata.variants.items()}
        plugin = instructions.plugin(emulated_pi.cache_dir().parent)  # qemu-user and gcc first: one line if missing
        emulator = emulated_pi.build(log=reporter.status)
        results = []
        with reporter.task("counting instructions", total=len(cpus) * len(config.interpreters)) as task:
            for cpu in cpus:
                result = EmulatedBenchmark(cpu, _facts(cpu), {"cpu": cpu.name, "threads": 1, "invokes": config.invokes})
                for interpreter in config.interpreters:
                    run = instructions.Run(emulator, cpu, interpreter, plugin, config.invokes)
                    counted = instructions.count(run, files, reporter.status)
                    rows = {by_file[f]: {"file": f, "sha256": metadata.variants[by_file[f]].sha256, **row}
                            for f, row in counted.items()}  # fmt: skip
                    version = emulated_pi.INTERPRETER_VERSIONS[interpreter]
                    result.interpreters[interpreter] = {"version": version, "variants": _with_ratios(rows)}
                    task.advance()
                folder.store_device(BENCHMARK_JSON, cpu.device_name, result.to_dict(), folder.load())
                results.append(result)
        return results

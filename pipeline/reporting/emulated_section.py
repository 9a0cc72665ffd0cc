"""The report on an emulated Raspberry Pi: instruction counts per variant and interpreter, and a pick by them.

`benchmark --emulate CPU` keeps each CPU's counts in benchmark.json (`devices.emulated-<alias>`, kind
`emulated-instructions`); a count stands only when it was made on the very file the folder holds (sha256).
`report --device pi5` recommends with the Cortex-A76's counts on ai-edge-litert (the maintained interpreter):
the fewest instructions within the accuracy budget, then the same size rules as on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..devices.emulated_bench import KIND
from ..errors import UsageError
from ..output.tables import md_prose, md_text
from .recommend import INSTRUCTIONS, ReportRow, recommend

PREFERRED = "litert"  # whose counts a recommendation uses (tflite-runtime's are shown beside)
MEANING = (
    "Executed Arm instructions per image (the median of the invokes after the first, one interpreter thread) under "
    "qemu emulating the board's core, with its /proc/cpuinfo, so the interpreters pick the kernels that board runs. "
    "Exact and the same every run, but not cycles: no cache misses or memory stalls, and a 16-multiply-add SDOT dot "
    "product counts as one instruction, like an add. Ratios between variants on one core track their latency ratios "
    "(MobileNetV2 1.0 224 on Cortex-A76: float32/int8 2.45x in instructions, 2.7x in published Pi 5 latency)."
)


@dataclass
class EmulatedColumn:
    """One emulated CPU's counts for each variant of the folder, by interpreter."""

    name: str  # emulated-pi5
    cpu: str  # cortex-a76
    board: str
    versions: dict[str, str] = field(default_factory=dict)  # interpreter -> version
    counts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # interpreter -> variant -> row

    def cost(self, interpreter: str, variant: str) -> int | None:
        return self.counts.get(interpreter, {}).get(variant, {}).get("instructions")

    @property
    def label(self) -> str:
        return f"an emulated {self.board} ({self.cpu})"


def emulated_columns(bench_devices: dict[str, Any], sha: dict[str, str]) -> list[EmulatedColumn]:
    """The emulated CPUs of benchmark.json, each count kept only for the file the folder holds now."""
    columns = []
    for name, entry in bench_devices.items():
        if not isinstance(entry, dict) or entry.get("kind") != KIND:
            continue
        facts = entry.get("facts") or {}
        column = EmulatedColumn(name, str(facts.get("cpu")), str(facts.get("model", "")).removesuffix(", emulated"))
        for interpreter, data in (entry.get("interpreters") or {}).items():
            column.versions[interpreter] = str(data.get("version"))
            column.counts[interpreter] = {
                variant: row
                for variant, row in (data.get("variants") or {}).items()
                if sha.get(variant) == row.get("sha256")
            }
        columns.append(column)
    return columns


def find(columns: list[EmulatedColumn], name: str) -> EmulatedColumn | None:
    """The column `report --device NAME` means: its own name, its CPU's name or alias (pi5, cortex-a76)."""
    from ..devices.instructions import resolve

    for column in columns:
        if name in (column.name, column.cpu):
            return column
    try:
        wanted = resolve(name).device_name
    except Exception:  # noqa: BLE001 - not an emulated CPU's name: the caller looks for a real device
        return None
    return next((c for c in columns if c.name == wanted), None)


def check_device(name: str, devices: list[str], columns: list[EmulatedColumn], folder: object) -> None:
    """`report --device NAME` names a device of benchmark.json or an emulated Pi counted there; else a usage error
    listing the names that are (and, for an emulated Pi not counted yet, the command that counts it)."""
    from ..devices.instructions import ALIASES, resolve

    if name in devices or find(columns, name) is not None:
        return
    counted = [column.name.removeprefix("emulated-") for column in columns]
    here = ", ".join([*devices, *counted]) or "none yet"
    try:
        cpu = resolve(name)
    except Exception:  # noqa: BLE001 - not an emulated CPU's name either
        raise UsageError(
            f"--device {name!r} is neither a device of benchmark.json nor an emulated Pi; measured here: {here}; "
            f"emulated Pis: {', '.join(ALIASES)} (`edge-pipeline benchmark {folder} --emulate pi5`); a real device: "
            f"`edge-pipeline benchmark {folder} --on HOST`"
        ) from None
    raise UsageError(
        f"--device {name!r}: benchmark.json has no instruction counts of an emulated {name} ({cpu.name}) "
        f"yet; run `edge-pipeline benchmark {folder} --emulate {name}` first (measured here: {here})"
    )


def cost_rows(rows: list[ReportRow], column: EmulatedColumn, interpreter: str = PREFERRED) -> list[ReportRow]:
    """The rows with this CPU's instruction counts (millions) as their cost; variants it cannot run left out."""
    counts = column.counts.get(interpreter, {})
    seen = []
    for row in rows:
        counted = counts.get(row.precision, {})
        if "instructions" not in counted:
            continue
        seen.append(replace(row, p50_ms={1: counted["instructions"] / 1e6}, p99_ms={}, speedup={}))
    reference = next((r for r in seen if r.precision == "float32"), None)
    for row in seen:
        if reference is not None:
            row.speedup = {1: reference.p50_ms[1] / row.p50_ms[1]}
    return seen


def recommendation(rows: list[ReportRow], column: EmulatedColumn, max_drop: float) -> tuple[str | None, str]:
    """(pick, text) by the column's counts on the preferred interpreter."""
    interpreter = PREFERRED if PREFERRED in column.counts else next(iter(column.counts), PREFERRED)
    pick, text = recommend(cost_rows(rows, column, interpreter), max_drop, 1, unit=INSTRUCTIONS)
    where = f"On {column.label}, {interpreter} {column.versions.get(interpreter, '')}, by instructions per image: "
    return pick, where + text


def section(columns: list[EmulatedColumn], variants: list[str], lines: list[str]) -> list[str]:
    """report.md's "On an emulated Raspberry Pi": a table per CPU, what the counts mean, and the pick by them."""
    if not columns:
        return []
    picks = [f"**{md_prose(line)}**" for line in lines if line.startswith("On an emulated")]
    out = ["## On an emulated Raspberry Pi", "", MEANING, "", *picks, ""]
    for column in columns:
        interpreters = list(column.counts)
        head = [
            "variant",
            *[md_text(f"{i} {column.versions[i]}: M instructions (x float32, M dot products)") for i in interpreters],
        ]
        out += [f"### {md_text(column.label)}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant in variants:
            cells = [variant]
            for interpreter in interpreters:
                row = column.counts[interpreter].get(variant, {})
                if "error" in row:
                    cells.append(f"cannot run: {md_text(str(row['error'])[:120])}")
                elif "instructions" in row:
                    ratio = row.get("ratio_to_float32")
                    shown = f" ({ratio:.2f}x, {row['dot_instructions'] / 1e6:.3f})" if ratio else ""
                    cells.append(f"{row['instructions'] / 1e6:.3f}{shown}")
                else:
                    cells.append("-")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out

"""The devices in the report: their facts, latency and accuracy check, and a recommendation per device.

benchmark.json and drift.json keep each device's results under its name (`benchmark/evaluate --on
HOST`); a number counts only when it was measured on the very file the folder holds (sha256).
`report --device NAME` recommends with that device's latency; accuracy stays the whole test split
measured here, and the device's own check (N images) is shown beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..devices.facts import describe
from ..errors import UsageError
from ..output.tables import md_prose, md_text
from .recommend import ReportRow


@dataclass
class DeviceColumn:
    """One device's numbers for each variant of the folder."""

    name: str
    facts: dict[str, Any]
    threads: list[int]
    p50_ms: dict[str, dict[int, float]] = field(default_factory=dict)  # precision -> threads -> ms
    p99_ms: dict[str, dict[int, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # precision -> why the device cannot run it
    accuracy: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    same_as_here: dict[str, float] = field(default_factory=dict)
    samples: int | None = None

    @property
    def first_threads(self) -> int | None:
        return self.threads[0] if self.threads else None


def _timings(column: DeviceColumn, entry: dict[str, Any], sha: dict[str, str]) -> None:
    for precision, row in (entry.get("variants") or {}).items():
        if sha.get(precision) != row.get("sha256"):
            continue
        if "error" in row:
            column.errors[precision] = row["error"]
            continue
        for threads, stats in (row.get("threads") or {}).items():
            column.p50_ms.setdefault(precision, {})[int(threads)] = stats["p50_ms"]
            column.p99_ms.setdefault(precision, {})[int(threads)] = stats["p99_ms"]


def _accuracy(column: DeviceColumn, entry: dict[str, Any], sha: dict[str, str]) -> None:
    column.samples = entry.get("samples")
    for precision, row in (entry.get("variants") or {}).items():
        if sha.get(precision) != row.get("sha256"):
            continue
        if "error" in row:
            column.errors.setdefault(precision, row["error"])
            continue
        column.accuracy[precision], column.agreement[precision] = row["accuracy"], row["agreement"]
        column.same_as_here[precision] = row["agreement_with_here"]


def device_columns(bench: dict[str, Any], drift: dict[str, Any], sha: dict[str, str]) -> list[DeviceColumn]:
    """Every device of benchmark.json and drift.json (their `devices` blocks), checked against `sha`."""
    columns = []
    for name in dict.fromkeys([*bench, *drift]):
        timing, accuracy = bench.get(name) or {}, drift.get(name) or {}
        facts = timing.get("facts") or accuracy.get("facts") or {}
        column = DeviceColumn(name, facts, [int(t) for t in (timing.get("settings") or {}).get("threads", [])])
        _timings(column, timing, sha)
        _accuracy(column, accuracy, sha)
        columns.append(column)
    return columns


def for_device(rows: list[ReportRow], columns: list[DeviceColumn], name: str) -> tuple[list[ReportRow], DeviceColumn]:
    """The rows as that device sees them: its latency in place of this machine's; variants it cannot run left out."""
    column = next((c for c in columns if c.name == name), None)
    if column is None:
        known = ", ".join(c.name for c in columns) or "none yet"
        raise UsageError(
            f"--device {name!r}: no such device in benchmark.json (known: {known}); "
            f"run `edge-pipeline benchmark MODEL_DIR --on {name}` first"
        )
    reference = column.p50_ms.get("float32", {})
    seen = []
    for row in rows:
        if row.precision in column.errors:
            continue
        p50 = column.p50_ms.get(row.precision, {})
        speedup = {t: reference[t] / ms for t, ms in p50.items() if t in reference and ms > 0}
        seen.append(replace(row, p50_ms=dict(p50), p99_ms=dict(column.p99_ms.get(row.precision, {})), speedup=speedup))
    return seen, column


def device_check(column: DeviceColumn, precision: str | None) -> str:
    """What the device's own accuracy check says about the pick, or how to get one."""
    if precision is None:
        return ""
    if precision not in column.same_as_here:
        return f" (no accuracy check on {column.name} yet: `edge-pipeline evaluate MODEL_DIR --on {column.name}`)"
    return (
        f" On {column.name} it gave the same class as this machine on {column.same_as_here[precision]:.2%} of "
        f"{column.samples or 0:,} test images and agreed with Keras on {column.agreement[precision]:.2%}."
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def section(columns: list[DeviceColumn], variants: list[str]) -> list[str]:
    """report.md's "Devices": each device's facts, then its latency and accuracy per variant."""
    if not columns:
        return []
    out = ["## Devices", ""]
    for column in columns:
        threads = column.threads
        out += [f"### {md_text(column.name)}", "", md_prose(describe(column.facts)) + ".", ""]
        head = ["variant", *[f"p50 ms @{t}t" for t in threads]]
        head += [f"accuracy ({column.samples or 0:,} images)", "agreement with Keras", "same class as here", "note"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for precision in variants:
            p50 = column.p50_ms.get(precision, {})
            cells = [precision, *[f"{p50[t]:.3f}" if t in p50 else "-" for t in threads]]
            cells += [
                _pct(column.accuracy.get(precision)),
                _pct(column.agreement.get(precision)),
                _pct(column.same_as_here.get(precision)),
                f"cannot run: {md_text(column.errors[precision])}" if precision in column.errors else "",
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out

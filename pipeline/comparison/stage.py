"""`edge-pipeline compare A B [C ...]`: every folder's variants side by side, the Pareto front, cross-folder agreement.

Numbers stand beside each other only where they are comparable: accuracy where folders were evaluated on the
same test images (the fingerprint `evaluate` records), host latency where they were benchmarked on the same
CPU, emulated instruction counts always (they are exact). The first folder is the reference; the table says
why a folder's column is empty. With `--baseline OLD` each folder is also gated against OLD (gate.py).
Writes comparison.md, comparison.json and comparison.png into `--output`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GateFailed, UsageError
from ..folder import FolderStore
from ..output import plots
from ..output.tables import Shown, Table, markdown, num, pct
from ..progress import Reporter, SilentReporter
from ..store.commits import atomic_path, atomic_write_json, atomic_write_text, now
from . import gate as gating
from .folders import FolderResults, VariantRow, display_names, load

MARKDOWN, JSON, PLOT = "comparison.md", "comparison.json", "comparison.png"


@dataclass(frozen=True)
class CompareConfig:
    folders: tuple[Path, ...]
    baseline: Path | None = None
    output: Path = Path("comparison")
    variant: str | None = None  # the variant to gate; None: each folder's recommended
    budgets: gating.Budgets = field(default_factory=gating.Budgets)
    summary: Path | None = None  # also append the markdown here (a CI job's summary page)

    def __post_init__(self) -> None:
        if not self.folders:
            raise UsageError("compare needs at least one model folder (and --baseline OLD), or two folders")
        if self.baseline is None and len(self.folders) < 2:
            raise UsageError("compare needs two or more model folders, or one with --baseline OLD")


@dataclass
class Agreement:
    """Two folders' shipped variants on the same test images."""

    first: str
    second: str
    variants: tuple[str, str]
    images: int
    agree: float
    only_first: int  # images only the first gets right
    only_second: int
    p_value: float  # two-sided exact McNemar

    def row(self) -> list[str]:
        return [f"{self.first} ({self.variants[0]})", f"{self.second} ({self.variants[1]})", f"{self.images:,}",
                pct(self.agree), str(self.only_first), str(self.only_second), f"{self.p_value:.3g}"]  # fmt: skip


@dataclass(repr=False)
class CompareResult(Shown):
    folders: list[FolderResults]
    threads: int | None  # the latency column the Pareto front is drawn on
    front: set[tuple[str, str]] = field(default_factory=set)  # (folder, variant) on the front
    notes: list[str] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    gates: list[gating.GateResult] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    json_wanted: bool = False  # --json: the CLI prints to_dict() instead of the tables

    @property
    def rows(self) -> list[VariantRow]:
        return [row for folder in self.folders for row in folder.rows]

    @property
    def regressions(self) -> list[gating.GateResult]:
        return [g for g in self.gates if g.regressions]

    def summary(self) -> str:
        names = ", ".join(f.name for f in self.folders)
        verdict = "; ".join(g.summary() for g in self.gates)
        return f"compared {names}" + (f": {verdict}" if verdict else "")

    def table(self) -> Table:
        threads = sorted({t for row in self.rows for t in row.p50_ms})
        devices = sorted({d for row in self.rows for d in row.emulated})
        columns = ["folder", "variant", "size KB", "accuracy", "agrees w/ Keras",
                   *(f"p50 ms @{t}t" for t in threads), *(f"{d} M instr" for d in devices), "Pareto"]  # fmt: skip
        rows = []
        for row in self.rows:
            cells = [row.folder, row.variant + (" *" if row.recommended else ""), f"{row.size_kb:,.1f}",
                     pct(row.accuracy), pct(row.agreement)]  # fmt: skip
            cells += [num(row.p50_ms.get(t), ".3f") for t in threads]
            cells += [num(row.emulated[d] / 1e6 if d in row.emulated else None, ",.2f") for d in devices]
            rows.append([*cells, "front" if (row.folder, row.variant) in self.front else ""])
        title = "the folders side by side (* each folder's recommended variant)"
        return Table(title, columns, rows, list(self.notes))

    def agreement_table(self) -> Table:
        columns = ["first", "second", "test images", "same top-1", "only first right", "only second right", "p"]
        return Table("agreement between folders on the same test images (McNemar's exact test, two-sided)",
                     columns, [a.row() for a in self.agreements])  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": now(),
            "folders": [
                {
                    "name": f.name,
                    "path": str(f.path),
                    "model": f.model,
                    "recommended": f.recommended,
                    "test_fingerprint": f.fingerprint,
                    "test_images": f.test_images,
                    "machine": f.machine,
                }
                for f in self.folders
            ],
            "rows": [{**row.__dict__, "on_front": (row.folder, row.variant) in self.front} for row in self.rows],
            "front_threads": self.threads,
            "notes": self.notes,
            "agreements": [a.__dict__ for a in self.agreements],
            "gates": [g.to_dict() for g in self.gates],
            "passed": not self.regressions,
        }

    def markdown(self) -> str:
        parts = [markdown(self.table())]
        if self.agreements:
            parts.append(markdown(self.agreement_table()))
        parts += [markdown(g.table()) for g in self.gates]
        return "\n".join(parts)

    def parts(self) -> list[Shown]:
        """What a console shows: this table, the agreement table when there is one, each gate's."""
        return [self, *([_Shown(self.agreement_table())] if self.agreements else []), *self.gates]

    def gate(self) -> None:
        """GateFailed (exit 1) naming each regression, when a gate failed."""
        if self.regressions:
            raise GateFailed("; ".join(g.summary() for g in self.regressions), self)


def _comparable(folders: list[FolderResults]) -> tuple[list[str], int | None]:
    """Blank what cannot stand beside the reference (the first folder), with a note saying why."""
    reference, notes = folders[0], []
    if reference.fingerprint is None:
        notes.append(f"{reference.name} has no record of its test images (run `edge-pipeline evaluate "
                     f"{reference.path}`): no accuracy is compared")  # fmt: skip
    for other in folders[1:]:
        if reference.fingerprint is None or other.fingerprint != reference.fingerprint:
            for row in other.rows:
                row.accuracy = row.agreement = None
        if reference.fingerprint is not None and other.fingerprint != reference.fingerprint:
            why = (
                f"has no record of its test images (run `edge-pipeline evaluate {other.path}`)"
                if other.fingerprint is None
                else f"was evaluated on other test images than {reference.name}"
            )
            notes.append(f"{other.name} {why}: compared on size and latency only")  # fmt: skip
    timed = next((f for f in folders if f.machine is not None and any(r.p50_ms for r in f.rows)), None)
    for other in folders:
        if timed is not None and other.machine != timed.machine and any(row.p50_ms for row in other.rows):
            for row in other.rows:
                row.p50_ms = {}
            notes.append(f"{other.name} was timed on {other.machine}, not {timed.machine} as {timed.name} was: its "
                         "latency is left out (emulated instruction counts compare across machines)")  # fmt: skip
    counts = [set(row.p50_ms) for row in (r for f in folders for r in f.rows) if row.p50_ms]
    common = set.intersection(*counts) if counts else set()
    return notes, min(common) if common else None


class _Shown(Shown):
    """A bare Table as something a reporter shows."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def table(self) -> Table:
        return self._table


def pareto(rows: list[VariantRow], threads: int | None) -> set[tuple[str, str]]:
    """The variants no other is at least as accurate and as fast as (and better in one)."""
    points = [(r, r.accuracy, r.p50_ms[threads]) for r in rows if r.accuracy is not None and threads in r.p50_ms]
    return {
        (row.folder, row.variant)
        for row, accuracy, latency in points
        if not any(a >= accuracy and t <= latency and (a > accuracy or t < latency) for _, a, t in points)
    }


def _shipped(folder: FolderResults, variant: str | None) -> str:
    chosen = variant or folder.recommended
    if chosen is None or folder.row(chosen) is None:
        raise UsageError(
            f"{folder.path}: has no {'variant ' + repr(chosen) if chosen else 'recommended variant'}; run "
            f"`edge-pipeline report {folder.path}`, or pass --variant, one of "
            f"{', '.join(row.variant for row in folder.rows) or 'none yet'}"
        )
    return chosen


def _agreements(folders: list[FolderResults], variant: str | None) -> list[Agreement]:
    found = []
    for i, first in enumerate(folders):
        for second in folders[i + 1 :]:
            if first.fingerprint is None or first.fingerprint != second.fingerprint:
                continue
            names = (variant or first.recommended or "float32", variant or second.recommended or "float32")
            a, b, labels = (
                first.predictions.get(names[0]),
                second.predictions.get(names[1]),
                first.predictions.get("labels"),
            )
            if a is None or b is None or labels is None:
                continue
            only_a, only_b = int(((a == labels) & (b != labels)).sum()), int(((b == labels) & (a != labels)).sum())
            p = min(1.0, 2 * gating.mcnemar_p(max(only_a, only_b), min(only_a, only_b)))
            found.append(
                Agreement(first.name, second.name, names, len(labels), float((a == b).mean()), only_a, only_b, p)
            )
    return found


def _write(result: CompareResult, output: Path, summary: Path | None) -> None:
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / MARKDOWN, result.markdown())
    atomic_write_json(output / JSON, result.to_dict())
    result.written = [output / MARKDOWN, output / JSON]
    threads = result.threads
    points = [
        plots.TradeoffPoint(r.variant, r.p50_ms[threads], r.accuracy, r.size_kb, r.recommended, r.folder)
        for r in result.rows
        if r.accuracy is not None and threads in r.p50_ms
    ]
    if points:
        front = [p for p in points if (p.group, p.label) in result.front]
        with atomic_path(output / PLOT) as picture:
            at = f"{threads} thread{'s' if threads != 1 else ''}"
            plots.tradeoff_plot(points, picture, f"accuracy against latency ({at})", f"p50 latency at {at} (ms)",
                                front=front)  # fmt: skip
        result.written.append(output / PLOT)
    else:
        result.notes.append("no variant has both accuracy and latency to plot: evaluate and benchmark the folders")
    if summary is not None:
        with open(summary, "a", encoding="utf-8") as stream:
            stream.write(result.markdown() + "\n")


def compare(config: CompareConfig, reporter: Reporter | None = None) -> CompareResult:
    """Read every folder, line them up, gate against the baseline when given, and write the comparison."""
    reporter = reporter or SilentReporter()
    paths = [*([config.baseline] if config.baseline is not None else []), *config.folders]
    if len({FolderStore(p).path.resolve() for p in paths}) < len(paths):
        raise UsageError("compare was given the same model folder twice")
    folders = [load(path, name) for path, name in zip(paths, display_names(paths), strict=True)]
    notes, threads = _comparable(folders)
    result = CompareResult(folders, threads, pareto([r for f in folders for r in f.rows], threads), notes)
    result.agreements = _agreements(folders, config.variant)
    if config.baseline is not None:
        old = folders[0]
        for new in folders[1:]:
            variants = (_shipped(old, config.variant), _shipped(new, config.variant))
            files = tuple(FolderStore(f.path).verified_variant(v, FolderStore(f.path).load())
                          for f, v in ((old, variants[0]), (new, variants[1])))  # fmt: skip
            timings = gating.retime((files[0], files[1]), config.budgets, reporter)
            result.gates.append(gating.gate(old, new, variants, config.budgets, timings))
    _write(result, config.output, config.summary)
    return result

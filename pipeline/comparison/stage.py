"""`edge-pipeline compare A B [C ...]`: every folder's variants side by side, the Pareto front, cross-folder agreement.

Accuracy and each image's top-1 are measured here, every variant run on the folder's test images through
edge_runtime (with `--baseline`, the gated variants only); sizes are the files' own. Numbers stand beside each
other only where they are comparable: accuracy where folders have the same test images (the fingerprint
`evaluate` records, and a named dataset's pixels), host latency where they were benchmarked on the same CPU,
emulated instruction counts always (they are exact). The first folder with test images is the reference; the
table says why a folder's column is empty. With `--baseline OLD` each folder is also gated against OLD
(gate.py). Writes comparison.md, comparison.json and comparison.png into `--output`; every string from a
folder is escaped in the markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..choices import GateCheck
from ..errors import GateFailed, UsageError
from ..folder import METADATA_FILE, FolderStore
from ..output import plots
from ..output.tables import Shown, Table, markdown, num, pct
from ..progress import Reporter, SilentReporter
from ..store.commits import atomic_path, atomic_write_json, atomic_write_text, now
from . import gate as gating
from .folders import FolderResults, VariantRow, display_names, load, measure
from .measured import Cache, checked_bytes

MARKDOWN, JSON, PLOT = "comparison.md", "comparison.json", "comparison.png"
DEFAULT_OUTPUT = Path("models/comparison")  # beside the model folders, out of a checkout's tracked files


@dataclass(frozen=True)
class CompareConfig:
    folders: tuple[Path, ...]
    baseline: Path | None = None
    output: Path = DEFAULT_OUTPUT
    variant: str | None = None  # the variant to gate; None: each folder's recommended
    budgets: gating.Budgets = field(default_factory=gating.Budgets)
    summary: Path | None = None  # also append the markdown here (a CI job's summary page)
    allow_missing: tuple[GateCheck, ...] = ()  # gate checks that may be missing (cannot be made) without failing

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
                    "test_pixels": f.images.pixels if f.images is not None else None,
                    "test_images": f.test_images,
                    "test_source": f.images.source if f.images is not None else None,
                    "unmeasured": f.unmeasured,
                    "failures": f.failures,
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


def _measurement_notes(folders: list[FolderResults], gated: bool) -> list[str]:
    """Why a folder or a variant has no measured accuracy, or no Keras agreement beside it."""
    notes = []
    for folder in folders:
        if folder.unmeasured is not None:
            notes.append(f"{folder.name}: no accuracy: {folder.unmeasured}")
        notes += [f"{folder.name} {variant}: no accuracy: {why}" for variant, why in folder.failures.items()]
        measured = [row for row in folder.rows if row.accuracy is not None]
        if measured and any(row.agreement is None for row in measured):
            notes.append(
                f"{folder.name}: agreement with Keras is drift.json's, shown where it names the very file (sha256) "
                f"and test images measured here; `edge-pipeline evaluate {folder.path}` adds it"
            )
    if gated and any(row.accuracy is None for folder in folders for row in folder.rows):
        notes.append("accuracy is measured for the gated variants only; compare without --baseline measures every one")
    return notes


def _comparable(folders: list[FolderResults]) -> tuple[list[str], int | None]:
    """Blank what cannot stand beside the reference (the first folder with test images), with a note saying why."""
    notes = []
    reference = next((f for f in folders if f.images is not None), None)
    for other in folders:
        if reference is None or reference.images is None or other.images is None:
            continue
        if other.images.same_as(reference.images):
            continue
        for row in other.rows:
            row.accuracy = row.agreement = None
        notes.append(f"{other.name}'s test images ({other.images.source}) are not {reference.name}'s "
                     f"({reference.images.source}): compared on size and latency only")  # fmt: skip
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
            if first.images is None or second.images is None or not first.images.same_as(second.images):
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


def _left_out(folder: FolderResults, threads: int | None) -> str | None:
    """Why none of a folder's variants is in the plot, or None when one is."""
    if any(r.accuracy is not None and threads in r.p50_ms for r in folder.rows):
        return None
    if all(r.accuracy is None for r in folder.rows):
        return "no accuracy measured (see above)"
    if threads is None:
        return "no thread count was timed in every folder (benchmark.json, for these files, on one CPU)"
    if not any(threads in r.p50_ms for r in folder.rows):
        return f"no latency at {threads} thread(s) recorded for its files on this CPU (run `edge-pipeline benchmark`)"
    return "no variant has both a measured accuracy and a latency"


def _plot(result: CompareResult, output: Path) -> None:
    threads = result.threads
    points = [
        plots.TradeoffPoint(r.variant, r.p50_ms[threads], r.accuracy, r.size_kb, r.recommended, r.folder)
        for r in result.rows
        if r.accuracy is not None and threads in r.p50_ms
    ]
    if not points:
        result.notes.append(f"{PLOT} is not drawn: no variant has both a measured accuracy and a latency")
        return
    front = [p for p in points if (p.group, p.label) in result.front]
    with atomic_path(output / PLOT) as picture:
        at = f"{threads} thread{'s' if threads != 1 else ''}"
        plots.tradeoff_plot(points, picture, f"accuracy against latency ({at})", f"p50 latency at {at} (ms)",
                            front=front)  # fmt: skip
    result.written.append(output / PLOT)
    for folder in result.folders:
        why = _left_out(folder, threads)
        if why is not None:
            result.notes.append(f"{folder.name} is left out of {PLOT}: {why}")


def _write(result: CompareResult, output: Path, summary: Path | None) -> None:
    output.mkdir(parents=True, exist_ok=True)
    _plot(result, output)
    atomic_write_text(output / MARKDOWN, result.markdown())
    atomic_write_json(output / JSON, result.to_dict())
    result.written[:0] = [output / MARKDOWN, output / JSON]
    if summary is not None:
        with open(summary, "a", encoding="utf-8") as stream:
            stream.write(result.markdown() + "\n")


def _output(config: CompareConfig, paths: list[Path]) -> Path:
    """Where the comparison goes: never into a model folder (its files are the folder's contract)."""
    output = Path(config.output)
    if (output / METADATA_FILE).exists() or any(output.resolve() == Path(p).resolve() for p in paths):
        raise UsageError(f"--output {output} is a model folder; give compare a folder of its own")
    return output


def _shipped_pairs(folders: list[FolderResults], variant: str | None) -> list[tuple[str, str]]:
    """(baseline's, new's) variant for each new folder."""
    old = folders[0]
    return [(_shipped(old, variant), _shipped(new, variant)) for new in folders[1:]]


def compare(config: CompareConfig, reporter: Reporter | None = None) -> CompareResult:
    """Read every folder, measure it, line them up, gate against the baseline when given, write the comparison."""
    reporter = reporter or SilentReporter()
    paths = [*([config.baseline] if config.baseline is not None else []), *config.folders]
    if len({FolderStore(p).path.resolve() for p in paths}) < len(paths):
        raise UsageError("compare was given the same model folder twice")
    output = _output(config, paths)
    folders = [load(path, name) for path, name in zip(paths, display_names(paths), strict=True)]
    gated = config.baseline is not None
    pairs = _shipped_pairs(folders, config.variant) if gated else []
    cache = Cache()
    for index, folder in enumerate(folders):
        wanted = [row.variant for row in folder.rows]
        if gated:
            wanted = sorted({pair[0] for pair in pairs}) if index == 0 else [pairs[index - 1][1]]
        what = "the baseline" if gated and index == 0 else f"folder {index + 1} of {len(folders)}"
        measure(folder, wanted, cache, reporter, what)
    notes, threads = _comparable(folders)
    notes[:0] = _measurement_notes(folders, gated)
    result = CompareResult(folders, threads, pareto([r for f in folders for r in f.rows], threads), notes)
    result.agreements = _agreements(folders, config.variant)
    allowed = frozenset(config.allow_missing)
    for new, variants in zip(folders[1:], pairs, strict=True) if gated else ():
        old = folders[0]
        contents = (checked_bytes(old.store, old.metadata, variants[0]),
                    checked_bytes(new.store, new.metadata, variants[1]))  # fmt: skip
        timings = gating.timed(contents, config.budgets, reporter)
        result.gates.append(gating.gate(old, new, variants, config.budgets, timings, allowed))
    _write(result, output, config.summary)
    return result

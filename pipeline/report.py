"""One report per model folder: which variant to ship and why (`edge-pipeline report`).

Joins metadata.json (training, sizes), drift.json (accuracy) and benchmark.json (latency)
into report.md, report.json and report.csv, with the trade-off chart, training curves, a
confusion matrix and a grid of test images for the recommended variant. Numbers are copied
from those files, never re-measured, so they agree with them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.model_folder import read_json_object
from edge_runtime.predictor import Predictor, requirements
from edge_runtime.tflite_file import at_least

from . import bundle, plots
from .bundle import Metadata, ModelFolder
from .data import DataConfig, balanced_indices, load_dataset, model_input_array
from .errors import DataError, FolderError, UsageError
from .evaluate import DEFAULT_MAX_DROP, disagreement_note, near_chance, resolution_note, within_budget
from .progress import Reporter, SilentReporter

# A variant this close to the fastest counts as "as fast"; then the smaller one wins, and
# between variants this close in size, the one that agrees with Keras more often.
AS_FAST = 1.10
AS_SMALL = 1.05
# tflite-runtime's last release: the interpreter many Raspberry Pi guides still install.
LEGACY_RUNTIME = "2.14"
# What each precision is for, beyond the numbers.
PURPOSE = {
    "float32": "the exact reference",
    "float16": "made for GPU delegates, which compute in float16; on a CPU it runs as float32",
    "dynamic": "int8 weights with float activations; integer-only accelerators cannot run it",
    "int8": "integer end to end: the one for integer-only accelerators (NPU, Edge TPU, microcontrollers)",
}


@dataclass(frozen=True)
class ReportConfig:
    folder: Path
    max_drop: float = DEFAULT_MAX_DROP
    samples: int = 24
    data_path: Path | None = None
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_drop <= 100.0:
            raise UsageError(f"--max-drop must be between 0 and 100 percentage points, got {self.max_drop}")
        if not 0 <= self.samples <= 200:
            raise UsageError(f"--samples must be between 0 and 200, got {self.samples}")


@dataclass
class ReportRow:
    """One variant, everything a person compares."""

    precision: str
    file: str
    bytes: int
    size_ratio: float | None  # x of float32; None when there is no float32 variant
    accuracy: float | None = None
    change_pp: float | None = None
    agreement: float | None = None
    mean_abs_diff: float | None = None
    p50_ms: dict[int, float] = field(default_factory=dict)
    p99_ms: dict[int, float] = field(default_factory=dict)
    speedup: dict[int, float] = field(default_factory=dict)  # float32 p50 / this p50
    peak_memory_mb: float | None = None
    within_budget: bool | None = None
    min_runtime: str | None = None  # oldest TFLite runtime that runs the file

    def runs_on(self, runtime: str) -> bool:
        return self.min_runtime is None or at_least(runtime, self.min_runtime)

    @property
    def size_kb(self) -> float:
        return self.bytes / 1024


@dataclass
class Report:
    name: str
    model: str
    dataset: str
    keras_accuracy: float | None
    test_images: int | None
    max_drop: float
    threads: list[int]
    rows: list[ReportRow]
    recommended: str | None
    recommendation: str
    training: dict[str, Any]
    machine: dict[str, Any] | None
    benchmark_settings: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    worst_classes: list[dict[str, Any]] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)
    drift_notes: list[str] = field(default_factory=list)  # the gate's resolution; why images change class
    runtime_notes: list[str] = field(default_factory=list)  # which runtime the recommendation needs; the legacy pick
    legacy_recommended: str | None = None  # the pick among variants tflite-runtime 2.14 runs

    @property
    def reference_threads(self) -> int | None:
        return self.threads[0] if self.threads else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [
            {
                **asdict(row),
                "size_kb": row.size_kb,
                "p50_ms": {str(k): v for k, v in row.p50_ms.items()},
                "p99_ms": {str(k): v for k, v in row.p99_ms.items()},
                "speedup": {str(k): v for k, v in row.speedup.items()},
            }
            for row in self.rows
        ]
        return {"created_at": bundle.now(), **data}


def _load_optional(
    folder: ModelFolder, name: str, metadata: Metadata, notes: list[str], stage: str
) -> dict[str, Any] | None:
    path = folder.file(name)
    if not path.is_file():
        notes.append(f"{name} is missing: run `edge-pipeline {stage} {folder.path}` to add it")
        return None
    folder.verified(name, metadata)
    try:
        return read_json_object(path, name)
    except Exception as error:  # noqa: BLE001 - a damaged optional input is reported, not fatal
        notes.append(f"{name} could not be read ({error}); re-run `edge-pipeline {stage}`")
        return None


def _fresh(record: dict[str, Any] | None, metadata: Metadata, precision: str) -> bool:
    """True when a drift/benchmark record was measured on the variant file that is there now."""
    return bool(record) and record.get("sha256") == metadata.variants[precision].sha256


def recommend(rows: list[ReportRow], max_drop: float, threads: int | None) -> tuple[str | None, str]:
    """The smallest variant within the accuracy budget that is as fast as the fastest such one."""
    measured = [r for r in rows if r.accuracy is not None]
    if not measured:
        return None, "No accuracy was measured, so nothing can be recommended: run `edge-pipeline evaluate`."
    within = [r for r in measured if r.within_budget]
    if not within:
        least = max(measured, key=lambda r: r.change_pp or 0.0)
        return None, (
            f"No variant stays within the {max_drop:g} pp accuracy budget; the least lossy is {least.precision} "
            f"({least.change_pp:+.2f} pp). Raise --max-drop or ship the Keras model's float32 conversion with care."
        )
    timed = [r for r in within if threads in r.p50_ms]
    if timed:
        fastest = min(r.p50_ms[threads] for r in timed)
        candidates = [r for r in timed if r.p50_ms[threads] <= fastest * AS_FAST]
        speed_note = " that is as fast as the fastest (within 10%)"
    else:
        candidates = within
        speed_note = ""
    smallest = min(r.bytes for r in candidates)
    pick = max((r for r in candidates if r.bytes <= smallest * AS_SMALL), key=lambda r: (r.agreement or 0.0, -r.bytes))
    why = (
        f"the smallest variant within your accuracy budget{speed_note}; "
        "of those within 5% of that size, the one agreeing most with Keras"
    )
    return pick.precision, (
        f"Ship {pick.file} ({pick.precision}): {why}. It is {_size_claim(pick)}, {_speed_claim(pick, threads)}, "
        f"{pick.change_pp:+.2f} pp top-1 accuracy against Keras (budget {max_drop:g} pp), and agrees with Keras "
        f"on {pick.agreement:.2%} of test images."
    )


def _size_claim(row: ReportRow) -> str:
    if row.size_ratio is None:
        return f"{row.size_kb:,.1f} KB"
    return f"{row.size_ratio:.2f}x the size of float32 ({row.size_kb:,.1f} KB)"


def _speed_claim(row: ReportRow, threads: int | None) -> str:
    if threads not in row.p50_ms:
        return "latency not measured (run `edge-pipeline benchmark`)"
    plural = "s" if threads != 1 else ""
    latency = f"{row.p50_ms[threads]:.3f} ms p50 at {threads} thread{plural}"
    return f"{row.speedup[threads]:.2f}x float32's speed ({latency})" if threads in row.speedup else latency


def alternatives(rows: list[ReportRow], recommended: str | None, threads: int | None) -> list[str]:
    """One line per other variant: how it compares with the recommended one, and what it is for."""
    pick = next((r for r in rows if r.precision == recommended), None)
    lines = []
    for row in rows:
        if pick is None or row is pick:
            continue
        parts = [f"{row.bytes / pick.bytes:.2f}x its size"]
        if threads in row.p50_ms and threads in pick.p50_ms:
            parts.append(f"{row.p50_ms[threads] / pick.p50_ms[threads]:.2f}x its latency")
        if row.accuracy is not None:
            parts.append(f"{row.change_pp:+.2f} pp against Keras, agreeing on {row.agreement:.2%}")
        if row.within_budget is False:
            parts.append("outside the accuracy budget")
        lines.append(f"{row.precision}: {', '.join(parts)}; {PURPOSE.get(row.precision, '')}.")
    return lines


def runtime_notes(
    rows: list[ReportRow], recommended: str | None, max_drop: float, threads: int | None
) -> tuple[list[str], str | None]:
    """Which runtime the recommendation needs, and the pick for tflite-runtime 2.14 when that differs."""
    pick = next((r for r in rows if r.precision == recommended), None)
    if pick is None:
        return [], None
    needs = pick.min_runtime or "unknown"
    if pick.runs_on(LEGACY_RUNTIME):
        return [
            f"{pick.file} needs TFLite runtime {needs} or newer: ai-edge-litert, TensorFlow, and tflite-runtime "
            f"{LEGACY_RUNTIME} (the legacy interpreter's last release) all run it."
        ], pick.precision
    lines = [
        f"{pick.file} needs TFLite runtime {needs} or newer (ai-edge-litert, or TensorFlow {needs}+); "
        f"tflite-runtime {LEGACY_RUNTIME}, the legacy interpreter's last release, cannot run it:"
    ]
    legacy, _ = recommend([r for r in rows if r.runs_on(LEGACY_RUNTIME)], max_drop, threads)
    if legacy is None:
        return [
            *lines,
            f"none of the variants it runs is within the budget; convert with "
            f"`edge-pipeline convert --target-runtime {LEGACY_RUNTIME}`.",
        ], None
    file = next(r.file for r in rows if r.precision == legacy)
    return [
        *lines,
        f"there, ship {file} ({legacy}), the same choice among the variants it runs, or convert with "
        f"`--target-runtime {LEGACY_RUNTIME}`.",
    ], legacy


def chance_verdict(metadata: Metadata, keras_accuracy: float | None) -> str | None:
    """'Do not ship' with the reason when the Keras model itself is near chance level."""
    classes = len(metadata.labels)
    if keras_accuracy is None or not near_chance(keras_accuracy, classes):
        return None
    training = metadata.training
    batch = int(training.get("hyperparameters", {}).get("batch_size") or 0)
    train_images = int(metadata.dataset.get("sizes", {}).get("train") or 0)
    steps = -(-train_images // batch) if batch and train_images else None
    why = (
        f"it trained {training.get('epochs_run')} epoch(s) of {steps} step(s) (batch {batch} on {train_images:,} "
        "images)"
        if steps
        else "it did not learn"
    )
    hint = (
        f"; train with a smaller --batch-size (e.g. {max(8, train_images // 32)}) or more --epochs"
        if steps and steps < 20
        else "; train longer or check the data"
    )
    return (
        f"Do not ship: the Keras model is near chance level ({keras_accuracy:.2%} on {classes} classes, chance "
        f"{1 / classes:.2%}), so every variant of it is too: {why}{hint}."
    )


def _drift_notes(drift: dict[str, Any] | None, max_drop: float) -> list[str]:
    if not drift:
        return []
    notes = [resolution_note(max_drop, int(drift.get("test_images") or 0))]
    margin = drift.get("keras", {}).get("median_margin")
    notes += [
        disagreement_note(p, v.get("changed", 0), v.get("changed_ties", 0), v.get("changed_keras_margin"), margin)
        for p, v in drift.get("variants", {}).items()
    ]
    return [note for note in notes if note]


def build_report(config: ReportConfig) -> Report:
    """Read the folder's results and join them; no files are written."""
    folder = ModelFolder(config.folder)
    metadata = folder.load()
    if not metadata.variants:
        raise FolderError(f"{folder.path}: has no TFLite variants; run `edge-pipeline convert {folder.path}` first")
    notes: list[str] = []
    drift = _load_optional(folder, bundle.DRIFT_JSON, metadata, notes, "evaluate")
    bench = _load_optional(folder, bundle.BENCHMARK_JSON, metadata, notes, "benchmark")
    threads = [int(t) for t in (bench or {}).get("settings", {}).get("threads", [])]
    base_bytes = metadata.variants["float32"].bytes if "float32" in metadata.variants else None
    rows = []
    for precision, variant in metadata.variants.items():
        row = ReportRow(precision, variant.file, variant.bytes, variant.bytes / base_bytes if base_bytes else None)
        row.min_runtime = variant.min_runtime or requirements(folder.variant_path(precision)).min_runtime
        drift_record = (drift or {}).get("variants", {}).get(precision)
        if _fresh(drift_record, metadata, precision):
            row.accuracy, row.change_pp = drift_record["accuracy"], drift_record["change_pp"]
            row.agreement, row.mean_abs_diff = drift_record["agreement"], drift_record["mean_abs_diff"]
            row.within_budget = within_budget(row.change_pp, config.max_drop, int(drift.get("test_images") or 0))
        elif drift is not None:
            notes.append(f"drift.json has no numbers for the current {variant.file}; re-run `edge-pipeline evaluate`")
        bench_record = (bench or {}).get("variants", {}).get(precision)
        if _fresh(bench_record, metadata, precision):
            for key, stats in bench_record["threads"].items():
                row.p50_ms[int(key)], row.p99_ms[int(key)] = stats["p50_ms"], stats["p99_ms"]
            row.peak_memory_mb = bench_record.get("peak_memory_mb")
        elif bench is not None:
            notes.append(
                f"benchmark.json has no numbers for the current {variant.file}; re-run `edge-pipeline benchmark`"
            )
        rows.append(row)
    reference = next((r for r in rows if r.precision == "float32"), None)
    for row in rows:
        for t, p50 in row.p50_ms.items():
            if reference is not None and t in reference.p50_ms and p50 > 0:
                row.speedup[t] = reference.p50_ms[t] / p50
    recommended, text = recommend(rows, config.max_drop, threads[0] if threads else None)
    keras_accuracy = (drift or {}).get("keras", {}).get("accuracy", metadata.training.get("test_accuracy"))
    refusal = chance_verdict(metadata, keras_accuracy)
    if refusal:
        recommended, text = None, refusal
    others = alternatives(rows, recommended, threads[0] if threads else None)
    runtime_lines, legacy = runtime_notes(rows, recommended, config.max_drop, threads[0] if threads else None)
    worst = []
    if recommended and drift:
        worst = drift["variants"][recommended]["per_class"][:5]
    return Report(
        name=metadata.name,
        model=str(metadata.training.get("model")),
        dataset=str(metadata.dataset.get("name")),
        keras_accuracy=keras_accuracy,
        test_images=(drift or {}).get("test_images"),
        max_drop=config.max_drop,
        threads=threads,
        rows=rows,
        recommended=recommended,
        recommendation=text,
        training=metadata.training,
        machine=(bench or {}).get("machine"),
        benchmark_settings=(bench or {}).get("settings"),
        notes=notes,
        worst_classes=worst,
        alternatives=others,
        runtime_notes=runtime_lines,
        legacy_recommended=legacy,
        drift_notes=_drift_notes(drift, config.max_drop),
    )


def _fmt(value: float | None, pattern: str, missing: str = "-") -> str:
    return missing if value is None else format(value, pattern)


def _has_float32(report: Report) -> bool:
    return any(row.precision == "float32" for row in report.rows)


def table_columns(report: Report) -> list[str]:
    """Columns of the variant table; the float32 comparisons only when there is a float32 variant."""
    relative = _has_float32(report)
    columns = [
        "variant",
        "size KB",
        *(["x float32"] if relative else []),
        "min runtime",
        "accuracy",
        "vs Keras (pp)",
        "agreement",
    ]
    cores = int((report.machine or {}).get("cores") or 0)
    for t in report.threads:
        over = f" ({t} threads on {cores} cores)" if cores and t > cores else ""
        columns += [f"p50 ms @{t}t{over}", f"p99 ms @{t}t", *([f"speed-up @{t}t"] if relative else [])]
    return [*columns, "peak MB", "within budget"]


def table_rows(report: Report) -> list[list[str]]:
    """The variant table as text cells (shared by the terminal, markdown and CSV)."""
    relative = _has_float32(report)
    lines = []
    for row in report.rows:
        ratio = [_fmt(row.size_ratio, ".2f") + ("x" if row.size_ratio is not None else "")] if relative else []
        cells = [
            row.precision + (" *" if row.precision == report.recommended else ""),
            f"{row.size_kb:,.1f}",
            *ratio,
            row.min_runtime or "-",
            _fmt(row.accuracy, ".2%"),
            _fmt(row.change_pp, "+.2f"),
            _fmt(row.agreement, ".2%"),
        ]
        for t in report.threads:
            speedup = [_fmt(row.speedup.get(t), ".2f", "-") + ("x" if t in row.speedup else "")] if relative else []
            cells += [_fmt(row.p50_ms.get(t), ".3f"), _fmt(row.p99_ms.get(t), ".3f"), *speedup]
        cells += [_fmt(row.peak_memory_mb, ".1f"), {True: "yes", False: "NO", None: "-"}[row.within_budget]]
        lines.append(cells)
    return lines


def to_markdown(report: Report, has: dict[str, bool]) -> str:
    columns = table_columns(report)
    out = [f"# {report.name}: which variant to ship", ""]
    out += [f"**{report.recommendation}**", ""]
    if report.runtime_notes:
        out += [" ".join(report.runtime_notes), ""]
    if report.alternatives:
        out += [f"Compared with {report.recommended}:", "", *[f"- {line}" for line in report.alternatives], ""]
    keras = f"{report.keras_accuracy:.2%}" if report.keras_accuracy is not None else "-"
    out += [
        f"Model `{report.model}` trained on `{report.dataset}`; Keras test accuracy {keras}"
        + (f" on {report.test_images:,} test images." if report.test_images else "."),
        "",
    ]
    out += ["## Variants", "", "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in table_rows(report)]
    out += [
        "",
        f"`*` recommended. Accuracy budget (--max-drop): {report.max_drop:g} pp (percentage points) below Keras. "
        "Agreement: share of test images whose top-1 class equals the Keras model's. "
        + ("Speed-up: float32's p50 latency divided by the variant's." if _has_float32(report) else ""),
        "",
    ]
    if report.drift_notes:
        out += ["Why images change class:", "", *[f"- {note}" for note in report.drift_notes], ""]
    if has.get(bundle.TRADEOFF_PNG):
        out += ["## Trade-off", "", f"![accuracy against latency, marker area by size]({bundle.TRADEOFF_PNG})", ""]
    if report.worst_classes:
        out += [
            f"## Where {report.recommended} loses accuracy (classes, worst first)",
            "",
            "| class | Keras | " + str(report.recommended) + " | change (pp) |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {c['label']} | {c['keras_accuracy']:.2%} | {c['accuracy']:.2%} | {c['change_pp']:+.2f} |"
            for c in report.worst_classes
        ]
        out += [""]
    if has.get(bundle.CONFUSION_PNG):
        out += [f"## Confusion matrix ({report.recommended})", "", f"![confusion matrix]({bundle.CONFUSION_PNG})", ""]
    if has.get(bundle.SAMPLES_PNG):
        out += [
            f"## Test images ({report.recommended})",
            "",
            "Blue titles are right, red are wrong.",
            "",
            f"![test images with predicted and true labels]({bundle.SAMPLES_PNG})",
            "",
        ]
    training = report.training
    out += [
        "## Training",
        "",
        f"{training.get('parameters', 0):,} parameters; {training.get('epochs_run')} epochs "
        f"(best {training.get('best_epoch')}) in {training.get('seconds', 0):.0f} s; "
        f"hyper-parameters: {_plain(training.get('hyperparameters') or {})}.",
        "",
    ]
    if has.get(bundle.HISTORY_PNG):
        out += [f"![loss and accuracy per epoch]({bundle.HISTORY_PNG})", ""]
    out += ["## How this was measured", ""]
    if report.machine:
        machine = report.machine
        versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
        out += [
            f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('os')}; interpreter "
            f"{machine.get('interpreter')}.",
            f"- Versions: {versions}.",
        ]
    if report.benchmark_settings:
        s = report.benchmark_settings
        out += [
            f"- Latency: invoke() on random input, {s.get('warmup')} warm-up runs then {s.get('runs')} timed runs per "
            "variant and "
            f"thread count, in {s.get('rounds')} interleaved rounds so machine noise hits every variant alike."
        ]
    out += [
        "- Accuracy: the whole test split through the Keras model and through each .tflite with edge_runtime (the "
        "on-device code).",
        "- Peak memory: a separate `edge-runtime bench` process per variant (interpreter only, no TensorFlow).",
    ]
    out += [f"- Note: {note}" for note in report.notes]
    return "\n".join(out) + "\n"


def _plain(values: dict[str, Any]) -> str:
    """Hyper-parameters as people write them: `epochs 12, batch_size 128, ...`."""
    return ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}" for key, value in values.items()
    )


def to_csv(report: Report) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream)
    header = [
        "precision",
        "file",
        "bytes",
        "size_kb",
        "size_ratio",
        "min_runtime",
        "accuracy",
        "change_pp",
        "agreement",
        "mean_abs_diff",
    ]
    for t in report.threads:
        header += [f"p50_ms_{t}t", f"p99_ms_{t}t", f"speedup_{t}t"]
    writer.writerow([*header, "peak_memory_mb", "within_budget", "recommended"])
    for row in report.rows:
        values: list[Any] = [
            row.precision,
            row.file,
            row.bytes,
            round(row.size_kb, 3),
            row.size_ratio,
            row.min_runtime,
            row.accuracy,
            row.change_pp,
            row.agreement,
            row.mean_abs_diff,
        ]
        for t in report.threads:
            values += [row.p50_ms.get(t), row.p99_ms.get(t), row.speedup.get(t)]
        writer.writerow([*values, row.peak_memory_mb, row.within_budget, row.precision == report.recommended])
    return stream.getvalue()


def _sample_grid(folder: ModelFolder, metadata: Metadata, precision: str, config: ReportConfig, target: Path) -> bool:
    """Predict a class-balanced handful of test images with the variant and draw them."""
    try:
        dataset = load_dataset(
            DataConfig.from_record(metadata.dataset, config.data_path, config.data_dir),
            metadata.input,
            recorded=folder.recorded_split(metadata),
        )
    except (DataError, UsageError):
        return False
    chosen = balanced_indices(dataset.test.labels, config.samples, seed=7)
    pixels = model_input_array(dataset.test.images[chosen], metadata.input)
    scores = Predictor(folder.verified_variant(precision, metadata)).scores(pixels)
    plots.samples_plot(
        np.clip(pixels, 0, 255).astype(np.uint8),
        dataset.test.labels[chosen].tolist(),
        scores.argmax(axis=1).tolist(),
        scores.max(axis=1).tolist(),
        metadata.labels,
        target,
        title=f"{metadata.name} {precision} on test images",
    )
    return True


def write_report(config: ReportConfig, reporter: Reporter | None = None) -> Report:
    """Build the report and write report.md/.json/.csv and its PNGs into the folder."""
    reporter = reporter or SilentReporter()
    report = build_report(config)
    folder = ModelFolder(config.folder)
    metadata = folder.load()
    has = {bundle.HISTORY_PNG: folder.file(bundle.HISTORY_PNG).is_file()}
    with folder.transaction() as tx:
        threads = report.reference_threads
        points = [
            plots.TradeoffPoint(
                r.precision, r.p50_ms[threads], r.accuracy, r.size_kb, r.precision == report.recommended
            )
            for r in report.rows
            if r.accuracy is not None and threads in r.p50_ms
        ]
        if points:
            plots.tradeoff_plot(
                points,
                tx.path(bundle.TRADEOFF_PNG),
                f"{report.name}: accuracy vs latency ({threads} thread{'s' if threads != 1 else ''})",
                latency_label=f"p50 latency at {threads} thread{'s' if threads != 1 else ''} (ms)",
            )
            has[bundle.TRADEOFF_PNG] = True
        shown = report.recommended
        drift_path = folder.file(bundle.DRIFT_JSON)
        if shown and drift_path.is_file():
            confusion = read_json_object(drift_path, bundle.DRIFT_JSON)["variants"][shown].get("confusion")
            if confusion is not None:
                plots.confusion_plot(
                    np.asarray(confusion),
                    metadata.labels,
                    tx.path(bundle.CONFUSION_PNG),
                    f"{report.name} {shown}: test split",
                )
                has[bundle.CONFUSION_PNG] = True
        if shown and config.samples:
            has[bundle.SAMPLES_PNG] = _sample_grid(folder, metadata, shown, config, tx.path(bundle.SAMPLES_PNG))
            if not has[bundle.SAMPLES_PNG]:
                report.notes.append(
                    "the test images could not be loaded, so there is no sample grid (pass --data/--data-dir)"
                )
        tx.write_text(bundle.REPORT_MD, to_markdown(report, has))
        tx.write_json(bundle.REPORT_JSON, report.to_dict())
        tx.write_text(bundle.REPORT_CSV, to_csv(report))
        for name in (bundle.TRADEOFF_PNG, bundle.CONFUSION_PNG, bundle.SAMPLES_PNG):
            if not has.get(name):
                tx.remove(name)
                metadata.files.pop(name, None)
        for name in (
            bundle.REPORT_MD,
            bundle.REPORT_JSON,
            bundle.REPORT_CSV,
            *(n for n, ok in has.items() if ok and n != bundle.HISTORY_PNG),
        ):
            metadata.files[name] = tx.record(name)
        metadata.recommended = report.recommended
        tx.commit(metadata)
    reporter.status(f"report: {folder.file(bundle.REPORT_MD)}")
    return report

"""One report per model folder: which variant to ship and why (`edge-pipeline report`).

Joins metadata.json (training, sizes), drift.json (accuracy) and benchmark.json (latency)
into report.md, report.json and report.csv, with the trade-off chart, training curves, a
confusion matrix and a grid of test images for the recommended variant. Numbers are copied
from those files, never re-measured, so they agree with them.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.predictor import Predictor, requirements

from ..conversion.diagnostics import QuantizationReport
from ..data.dataset import DataConfig, balanced_indices, load_dataset
from ..data.tf_pipeline import model_input_array
from ..errors import DataError, FolderError, UsageError
from ..folder import (
    BENCHMARK_JSON,
    CONFUSION_PNG,
    DRIFT_JSON,
    HISTORY_PNG,
    MB,
    QUANTIZATION_JSON,
    REPORT_CSV,
    REPORT_JSON,
    REPORT_MD,
    SAMPLES_PNG,
    TRADEOFF_PNG,
    FolderStore,
    Metadata,
    Transaction,
    VariantInfo,
)
from ..measure.benchmark import BenchmarkResult
from ..measure.evaluate import DEFAULT_MAX_DROP, DriftResult, resolution_note, within_budget
from ..measure.learning import ClassCounts
from ..output import plots
from ..store.commits import parsed_results, read_results_json
from . import emulated_section, quant_section, uncertainty
from .device_columns import DeviceColumn, describe, device_check, device_columns, for_device
from .recommend import INSTRUCTIONS, ReportRow, alternatives, chance_verdict, recommend, runtime_notes
from .record import Report, ReportConfig, as_reference, table_columns, table_rows
from .render import to_csv, to_markdown

__all__ = [
    "Report",
    "ReportConfig",
    "ReportRow",
    "build_report",
    "table_columns",
    "table_rows",
    "to_csv",
    "to_markdown",
    "write_report",
]


def _load_optional(
    folder: FolderStore, name: str, metadata: Metadata, notes: list[str], stage: str
) -> dict[str, Any] | None:
    path = folder.file(name)
    if not path.is_file():
        notes.append(f"{name} is missing: run `edge-pipeline {stage} {folder.path}` to add it")
        return None
    folder.verified(name, metadata)
    try:
        return read_results_json(path, name)
    except Exception as error:  # noqa: BLE001 - a damaged optional input is reported, not fatal
        notes.append(f"{name} could not be read ({error}); re-run `edge-pipeline {stage}`")
        return None


def _budget_notes(drift: DriftResult | None, max_drop: float) -> list[str]:
    """How to read the budget and the numbers: the gate's resolution, the evaluation's own budget when --max-drop
    says another, and on a small test set how uncertain each number is."""
    if drift is None:
        return []
    resolution = resolution_note(max_drop, drift.test_images)
    notes = [resolution] if resolution else []
    if abs(drift.max_drop - max_drop) > 1e-9:
        notes.append(f"this budget is report --max-drop's; `evaluate` gated with {drift.max_drop:g} pp (drift.json)")
    legend = uncertainty.legend(drift.test_images)
    return [*notes, *([legend] if legend else [])]


def _keras_counts(drift: DriftResult | None, metadata: Metadata) -> ClassCounts | None:
    """The Keras model's test answers per class: drift.json's confusion matrix, else what training recorded."""
    if drift is not None and drift.keras_confusion is not None:
        return ClassCounts.from_confusion(drift.keras_confusion)
    return ClassCounts.from_record(metadata.training.get("test_counts"), len(metadata.labels))


def _read_results(
    folder: FolderStore, metadata: Metadata, notes: list[str]
) -> tuple[DriftResult | None, BenchmarkResult | None]:
    """drift.json and benchmark.json as typed results (None, with a note, when missing or unreadable)."""
    drift = _load_optional(folder, DRIFT_JSON, metadata, notes, "evaluate")
    bench = _load_optional(folder, BENCHMARK_JSON, metadata, notes, "benchmark")
    return (
        parsed_results(DRIFT_JSON, lambda: DriftResult.from_dict(drift, folder.path)) if drift else None,
        parsed_results(BENCHMARK_JSON, lambda: BenchmarkResult.from_dict(bench, folder.path)) if bench else None,
    )


def _quantization(folder: FolderStore, metadata: Metadata) -> dict[str, Any] | None:
    """quantization.json and the mixed record, summarised; None for folders converted without them."""
    if QUANTIZATION_JSON not in metadata.files or not folder.file(QUANTIZATION_JSON).is_file():
        return None
    folder.verified(QUANTIZATION_JSON, metadata)
    data = read_results_json(folder.file(QUANTIZATION_JSON), QUANTIZATION_JSON)
    quant = parsed_results(QUANTIZATION_JSON, lambda: QuantizationReport.from_dict(data))
    mixed = metadata.variants.get("mixed")
    return quant_section.summary(quant, mixed.mixed if mixed else None)


def _devices(
    folder: FolderStore, metadata: Metadata
) -> tuple[list[DeviceColumn], list[emulated_section.EmulatedColumn]]:
    """Each device's results from benchmark.json and drift.json, and each emulated CPU's counts; only for the
    files the folder holds."""
    blocks = []
    for name in (BENCHMARK_JSON, DRIFT_JSON):
        path = folder.file(name)
        readable = path.is_file() and name in metadata.files
        blocks.append(dict(read_results_json(path, name).get("devices") or {}) if readable else {})
    sha = {v.precision: v.sha256 for v in metadata.variants.values()}
    real = {name: entry for name, entry in blocks[0].items() if entry.get("kind") != emulated_section.KIND}
    return device_columns(real, blocks[1], sha), emulated_section.emulated_columns(blocks[0], sha)


def _row(
    variant: VariantInfo,
    folder: FolderStore,
    base_bytes: int | None,
    drift: DriftResult | None,
    bench: BenchmarkResult | None,
    max_drop: float,
    notes: list[str],
) -> ReportRow:
    """One variant's row: size and runtime from metadata, accuracy and latency when measured on this very file."""
    row = ReportRow(variant.precision, variant.file, variant.bytes, variant.bytes / base_bytes if base_bytes else None)
    row.min_runtime = variant.min_runtime or requirements(folder.file(variant.file)).min_runtime
    measured = next((v for v in drift.variants if v.precision == variant.precision), None) if drift else None
    if measured is not None and measured.sha256 == variant.sha256:
        row.accuracy, row.change_pp = measured.accuracy, measured.change_pp
        row.agreement, row.mean_abs_diff = measured.agreement, measured.mean_abs_diff
        row.within_budget = within_budget(row.change_pp, max_drop, drift.test_images if drift else 0)
    elif drift is not None:
        notes.append(f"drift.json has no numbers for the current {variant.file}; re-run `edge-pipeline evaluate`")
    timed = next((v for v in bench.variants if v.precision == variant.precision), None) if bench else None
    if timed is not None and timed.sha256 == variant.sha256:
        for threads, stats in timed.latency.items():
            row.p50_ms[threads], row.p99_ms[threads] = stats.p50_ms, stats.p99_ms
        row.peak_memory_mb = timed.peak_memory_mb
    elif bench is not None:
        notes.append(f"benchmark.json has no numbers for the current {variant.file}; re-run `edge-pipeline benchmark`")
    return row


def _speedups(rows: list[ReportRow]) -> None:
    reference = next((r for r in rows if r.precision == "float32"), None)
    for row in rows:
        for t, p50 in row.p50_ms.items():
            if reference is not None and t in reference.p50_ms and p50 > 0:
                row.speedup[t] = reference.p50_ms[t] / p50


def build_report(config: ReportConfig) -> Report:
    """Read the folder's results and join them; no files are written."""
    folder = FolderStore(config.folder)
    metadata = folder.load()
    if not metadata.variants:
        raise FolderError(f"{folder.path}: has no TFLite variants; run `edge-pipeline convert {folder.path}` first")
    notes: list[str] = []
    drift, bench = _read_results(folder, metadata, notes)
    budget = config.max_drop if config.max_drop is not None else (drift.max_drop if drift else DEFAULT_MAX_DROP)
    config = replace(config, max_drop=budget)  # the budget `evaluate` used, unless --max-drop says another
    threads = [int(t) for t in (bench.settings.get("threads", []) if bench else [])]
    base = metadata.variants["float32"].bytes if "float32" in metadata.variants else None
    rows = [_row(variant, folder, base, drift, bench, config.max_drop, notes) for variant in metadata.variants.values()]
    _speedups(rows)
    if drift is not None:
        uncertainty.annotate(rows, drift, uncertainty.paired_answers(folder, metadata, drift))
    first = threads[0] if threads else None
    devices, emulated = _devices(folder, metadata)
    recommended, text, others = _recommendations(config, rows, (first, bench), devices, emulated)
    basis, key, unit = _basis(config, rows, first, devices, emulated)
    keras_accuracy = drift.keras_accuracy if drift else metadata.training.get("test_accuracy")
    refusal = chance_verdict(metadata, keras_accuracy, _keras_counts(drift, metadata))
    if refusal:
        recommended, text = None, refusal
    runtime_lines, legacy = runtime_notes(rows, recommended, config.max_drop, first)
    named = partial(as_reference, training=metadata.training)  # an imported .tflite's reference is the source
    text, others, runtime_lines = named(text), [named(line) for line in others], [named(x) for x in runtime_lines]
    picked = next((v for v in drift.variants if v.precision == recommended), None) if drift else None
    return Report(
        name=metadata.name,
        model=str(metadata.training.get("model")),
        dataset=str(metadata.dataset.get("name")),
        keras_accuracy=keras_accuracy,
        test_images=drift.test_images if drift else None,
        max_drop=budget,
        threads=threads,
        rows=rows,
        recommended=recommended,
        recommendation=text,
        training=metadata.training,
        machine=bench.machine if bench else None,
        benchmark_settings=bench.settings if bench else None,
        notes=notes,
        worst_classes=[asdict(c) for c in picked.per_class[:5]] if picked and picked.per_class[0].change_pp < 0 else [],
        alternatives=[named(line) for line in alternatives(basis, recommended, key, unit)],
        runtime_notes=runtime_lines,
        legacy_recommended=legacy,
        drift_notes=drift.disagreements() if drift else [],
        budget_notes=_budget_notes(drift, budget),
        quantization=_quantization(folder, metadata),
        devices=devices,
        device=config.device,
        emulated=emulated,
        other_recommendations=others if not refusal else [],
        device_key=_device_key(config.device, devices, emulated),
        host_recommended=None if refusal else recommend(rows, config.max_drop, first)[0],
    )


def _device_key(
    name: str | None, devices: list[DeviceColumn], emulated: list[emulated_section.EmulatedColumn]
) -> str | None:
    """Where `report --device NAME`'s pick is recorded: a real device by its name, an emulated CPU by its own."""
    if name is None or any(d.name == name for d in devices):
        return name
    column = emulated_section.find(emulated, name)
    return column.name if column is not None else name


def _basis(
    config: ReportConfig,
    rows: list[ReportRow],
    first: int | None,
    devices: list[DeviceColumn],
    emulated: list[emulated_section.EmulatedColumn],
) -> tuple[list[ReportRow], int | None, str]:
    """The rows the pick was made on, with their cost key and unit: this machine's, a device's, an emulated CPU's."""
    if config.device and all(d.name != config.device for d in devices):
        column = emulated_section.find(emulated, config.device)
        if column is not None:
            return emulated_section.cost_rows(rows, column), 1, INSTRUCTIONS
    if config.device:
        seen, device = for_device(rows, devices, config.device)
        return seen, device.first_threads, "ms"
    return rows, first, "ms"


def _recommendations(
    config: ReportConfig,
    rows: list[ReportRow],
    timing: tuple[int | None, BenchmarkResult | None],
    devices: list[DeviceColumn],
    emulated: list[emulated_section.EmulatedColumn],
) -> tuple[str | None, str, list[str]]:
    """(pick, why, the other machines' picks): each says the machine its numbers come from.

    Without --device the pick is by this machine's latency, and each emulated Pi's pick by its instruction counts
    is stated beside it; --device NAME (a device of benchmark.json, or pi5/pi4/pi3) picks by that one's numbers
    and states this machine's beside it.
    """
    first, bench = timing
    if config.device:
        emulated_section.check_device(config.device, [d.name for d in devices], emulated, config.folder)
    recommended, text = recommend(rows, config.max_drop, first)
    # by size when the pick has no latency (none timed, or benchmark.json timed other files than these)
    timed = first is not None and any(r.precision == recommended and first in r.p50_ms for r in rows)
    if timed and bench is not None:
        machine = bench.machine
        where = f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('interpreter')}"
        text += f" (Latency: this machine, {where}.)"
    host = f"On this machine, {'by latency' if timed else 'by size (latency not measured)'}: {text}"
    others = [emulated_section.recommendation(rows, column, config.max_drop)[1] for column in emulated]
    if not config.device:
        return recommended, text, others
    column = emulated_section.find(emulated, config.device) if all(d.name != config.device for d in devices) else None
    if column is not None:
        recommended, text = emulated_section.recommendation(rows, column, config.max_drop)
        return recommended, text, [host, *(line for line in others if not line.startswith(f"On {column.label},"))]
    seen, device = for_device(rows, devices, config.device)
    recommended, text = recommend(seen, config.max_drop, device.first_threads)
    text = f"For {device.name} ({describe(device.facts)}), with its latency: {text}{device_check(device, recommended)}"
    return recommended, text, [host, *others]


def _sample_grid(folder: FolderStore, metadata: Metadata, precision: str, config: ReportConfig, target: Path) -> bool:
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


def _quantization_plots(report: Report, tx: Transaction) -> dict[str, bool]:
    data, has = report.quantization or {}, {}
    if data.get("layers"):
        labels, snr = [x["label"] for x in data["layers"]], [x["snr_db"] for x in data["layers"]]
        path = tx.path(quant_section.QUANTIZATION_PNG)
        plots.layer_error_plot(labels, snr, path, f"{report.name} int8: signal-to-noise per layer")
        has[quant_section.QUANTIZATION_PNG] = True
    if data.get("sweep"):
        rows = (report.quantization or {}).get("sweep_runs", [])
        plots.sweep_plot(
            rows, tx.path(quant_section.CALIBRATION_PNG), f"{report.name}: int8 agreement per calibration size"
        )
        has[quant_section.CALIBRATION_PNG] = True
    return has


def _record_files(tx: Transaction, metadata: Metadata, has: dict[str, bool]) -> None:
    """Checksums of what the report wrote; pictures it could not draw this time are removed."""
    for name in (TRADEOFF_PNG, CONFUSION_PNG, SAMPLES_PNG, *quant_section.PNGS):
        if not has.get(name):
            tx.remove(name)
            metadata.files.pop(name, None)
    written = (n for n, ok in has.items() if ok and n != HISTORY_PNG)
    for name in (REPORT_MD, REPORT_JSON, REPORT_CSV, *written):
        metadata.files[name] = tx.record(name)


def write_report(config: ReportConfig) -> Report:
    """Build the report and write report.md/.json/.csv and its PNGs into the folder."""
    folder = FolderStore(config.folder)
    with folder.writing("report"):
        return _write_report(folder, config)


def _write_report(folder: FolderStore, config: ReportConfig) -> Report:
    report = build_report(config)
    metadata = folder.load()
    folder.check_room(16 * MB, "report")
    has = {HISTORY_PNG: folder.file(HISTORY_PNG).is_file()}
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
                tx.path(TRADEOFF_PNG),
                f"{report.name}: accuracy vs latency ({threads} thread{'s' if threads != 1 else ''})",
                latency_label=f"p50 latency at {threads} thread{'s' if threads != 1 else ''} (ms)",
            )
            has[TRADEOFF_PNG] = True
        shown = report.recommended
        drift_path = folder.file(DRIFT_JSON)
        if shown and drift_path.is_file():
            confusion = read_results_json(drift_path, DRIFT_JSON)["variants"][shown].get("confusion")
            if confusion is not None:
                plots.confusion_plot(
                    np.asarray(confusion),
                    metadata.labels,
                    tx.path(CONFUSION_PNG),
                    f"{report.name} {shown}: test split",
                )
                has[CONFUSION_PNG] = True
        if shown and config.samples:
            has[SAMPLES_PNG] = _sample_grid(folder, metadata, shown, config, tx.path(SAMPLES_PNG))
            if not has[SAMPLES_PNG]:
                report.notes.append(
                    "the test images could not be loaded, so there is no sample grid (pass --data/--data-dir)"
                )
        has.update(_quantization_plots(report, tx))
        tx.write_text(REPORT_MD, to_markdown(report, has))
        tx.write_json(REPORT_JSON, report.to_dict())
        tx.write_text(REPORT_CSV, to_csv(report))
        _record_files(tx, metadata, has)
        if report.device_key is None or config.as_default:
            metadata.recommended = report.recommended  # the folder's default: what edge_runtime runs given it
        elif metadata.recommended is None:
            metadata.recommended = report.host_recommended  # a first report: the default is this machine's pick
        if report.device_key is not None:
            metadata.device_picks[report.device_key] = report.recommended  # what deploy sends that device
            if report.recommended is None:
                metadata.device_picks.pop(report.device_key)
        tx.commit(metadata)
    return report

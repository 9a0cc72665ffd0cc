"""report.md, report.csv and the variant table's cells: how a Report reads, apart from how it is built.

Every string that comes from the folder (its name, labels, devices, machine, notes naming them) is escaped in
report.md (`pipeline.output.tables.md_text`): shown, never rendered as HTML, emphasis, links or table cells.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ..folder import CONFUSION_PNG, HISTORY_PNG, SAMPLES_PNG, TRADEOFF_PNG
from ..output.tables import md_code, md_prose, md_text
from . import device_columns, emulated_section, quant_section
from .record import Report, as_reference, has_float32, table_columns, table_rows


def _summary(report: Report) -> list[str]:
    out = [f"# {md_text(report.name)}: which variant to ship", "", f"**{md_prose(report.recommendation)}**", ""]
    out += [*(f"- {md_prose(line)}" for line in report.other_recommendations)]
    out += [""] if report.other_recommendations else []
    if report.runtime_notes:
        out += [md_prose(" ".join(report.runtime_notes)), ""]
    if report.alternatives:
        lines = [f"- {md_prose(line)}" for line in report.alternatives]
        out += [f"Compared with {report.recommended}:", "", *lines, ""]
    keras = f"{report.keras_accuracy:.2%}" if report.keras_accuracy is not None else "-"
    tested = f" on {report.test_images:,} test images." if report.test_images else "."
    imported = report.training.get("imported_from")
    if imported:  # `edge-pipeline import`: made elsewhere, measured here
        file, _, kind = str(imported).rpartition(" (")  # `my model (v2).keras (keras, Keras 3.15.1)`
        file, kind = (file, kind) if file else (kind, "")
        source = md_code(file) + (f" ({md_text(kind)}" if kind else "")
        return [*out, f"Model imported from {source}, measured by edge-pipeline on "
                f"{md_code(report.dataset)}; the source's own test accuracy {keras}{tested}", ""]  # fmt: skip
    trained = f"Model {md_code(report.model)} trained on {md_code(report.dataset)}"
    return [*out, f"{trained}; Keras test accuracy {keras}{tested}", ""]


def _variants(report: Report) -> list[str]:
    columns = table_columns(report)
    out = ["## Variants", "", "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(md_text(cell) for cell in cells) + " |" for cells in table_rows(report)]
    timed = has_float32(report) and report.threads  # the speed-up columns exist only then
    speedup = " Speed-up: float32's p50 latency divided by the variant's." if timed else ""
    reference = md_text(as_reference("Keras", report.training))  # an imported .tflite: its source
    out += [
        "",
        f"`*` recommended. Accuracy budget (--max-drop): {report.max_drop:g} pp (percentage points) below "
        f"{reference}. Agreement: share of test images whose top-1 class equals the {reference} model's.{speedup}",
        "",
        *[line for note in report.budget_notes for line in (_sentence(note), "")],
    ]
    if report.drift_notes:
        out += ["Why images change class:", "", *[f"- {md_prose(note)}" for note in report.drift_notes], ""]
    return out


def _sentence(note: str) -> str:
    return note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")


def _pictures(report: Report, has: dict[str, bool]) -> list[str]:
    out: list[str] = []
    if has.get(TRADEOFF_PNG):
        out += ["## Trade-off", "", f"![accuracy against latency, marker area by size]({TRADEOFF_PNG})", ""]
    if report.worst_classes:
        out += [
            f"## Where {report.recommended} loses accuracy (classes, worst first)",
            "",
            f"| class | Keras | {report.recommended} | change (pp) |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {md_text(c['label'])} | {c['keras_accuracy']:.2%} | {c['accuracy']:.2%} | {c['change_pp']:+.2f} |"
            for c in report.worst_classes
        ]
        out += [""]
    if has.get(CONFUSION_PNG):
        out += [f"## Confusion matrix ({report.recommended})", "", f"![confusion matrix]({CONFUSION_PNG})", ""]
    if has.get(SAMPLES_PNG):
        out += [
            f"## Test images ({report.recommended})",
            "",
            "Blue titles are right, red are wrong.",
            "",
            f"![test images with predicted and true labels]({SAMPLES_PNG})",
            "",
        ]
    return out


def _training(report: Report, has: dict[str, bool]) -> list[str]:
    training = report.training
    if training.get("imported_from"):  # nothing trained here: where it came from, what its own framework scored
        parameters = training.get("parameters")
        counted = f"{parameters:,} parameters; " if isinstance(parameters, int) and parameters > 0 else ""
        line = f"{counted}imported, not trained here: {training['imported_from']}."
        return ["## Source", "", md_text(line), ""]
    line = (
        f"{training.get('parameters', 0):,} parameters; {training.get('epochs_run')} epochs "
        f"(best {training.get('best_epoch')}) in {training.get('seconds', 0):.0f} s; "
        f"hyper-parameters: {_plain(training.get('hyperparameters') or {})}."
    )
    out = ["## Training", "", md_prose(line), ""]
    if has.get(HISTORY_PNG):
        out += [f"![loss and accuracy per epoch]({HISTORY_PNG})", ""]
    return out


def _method(report: Report) -> list[str]:
    out = ["## How this was measured", ""]
    if report.machine:
        machine = report.machine
        versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
        out += [
            "- "
            + md_prose(
                f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('os')}; interpreter "
                f"{machine.get('interpreter')}."
            ),
            f"- Versions: {md_prose(versions)}.",
        ]
    if report.benchmark_settings:
        s = report.benchmark_settings
        out += [
            f"- Latency: invoke() on random input, {s.get('warmup')} warm-up runs then {s.get('runs')} timed runs "
            f"per variant and thread count, in {s.get('rounds')} interleaved rounds so machine noise hits every "
            "variant alike."
        ]
    out += [
        "- Accuracy: the whole test split through the Keras model and through each .tflite with edge_runtime "
        "(the on-device code).",
        "- Peak memory: a separate `edge-runtime bench` process per variant (interpreter only, no TensorFlow).",
    ]
    return out + [f"- Note: {md_prose(note)}" for note in report.notes]


def to_markdown(report: Report, has: dict[str, bool]) -> str:
    """report.md: the recommendation first, then the table, pictures, training and how it was measured."""
    sections = [*_summary(report), *_variants(report)]
    sections += [
        *device_columns.section(report.devices, [row.precision for row in report.rows]),
        *emulated_section.section(
            report.emulated, [row.precision for row in report.rows], report.other_recommendations
        ),
        *_pictures(report, has),
    ]
    sections += [*quant_section.section(report.quantization, has), *_training(report, has)]
    text = "\n".join([*sections, *_method(report)]) + "\n"
    return as_reference(text, report.training)


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

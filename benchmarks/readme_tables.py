"""README's and docs/phones.md's tables of the shipped folder, made from the folder's own files.

    python benchmarks/readme_tables.py [FOLDER]   # prints the three tables (default: models/fashion-mnist-cnn)

tests/test_docs.py checks that README.md and docs/phones.md hold exactly these lines, so a regenerated folder
and the pages cannot drift apart: regenerate the folder, run this, paste.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_runtime.folder.reader import read_metadata  # noqa: E402
from pipeline.reporting.emulated_section import emulated_columns  # noqa: E402
from pipeline.store.commits import read_results_json  # noqa: E402

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
HOST_VARIANTS = ("float32", "float16", "dynamic", "int8", "mixed")
# README's emulated columns: (benchmark.json device, interpreter, heading)
EMULATED = (
    ("emulated-pi5", "litert", "Pi 5 (Cortex-A76), ai-edge-litert"),
    ("emulated-pi5", "tflite-runtime", "Pi 5, tflite-runtime 2.14"),
    ("emulated-pi3", "litert", "Pi 3 / Zero 2 W (Cortex-A53), ai-edge-litert"),
    ("emulated-pi3", "tflite-runtime", "Pi 3, tflite-runtime"),
)
PHONE_USE = {
    "mediapipe-float32": "the exact reference",
    "mediapipe-float16": "the GPU delegate (computes in float16)",
    "mediapipe-int8": "the CPU (XNNPACK) and NNAPI",
}


def _rows(folder: Path) -> dict[str, dict[str, Any]]:
    report = read_results_json(folder / "report.json", "report.json")
    return {str(row["precision"]): row for row in report.get("rows", [])}


def _measured(row: dict[str, Any]) -> list[str]:
    return [
        f"{row['size_kb']:.0f} KB",
        f"{row['accuracy'] * 100:.2f}%",
        f"{row['change_pp']:+.2f} pp",
        f"{row['agreement'] * 100:.2f}%",
    ]


def host_table(folder: Path = SHIPPED) -> list[str]:
    """Size, accuracy, agreement and this machine's p50 latency at 1 thread of the TFLite variants."""
    rows = _rows(folder)
    out = [
        "| variant | size | x float32 | accuracy | vs Keras | agreement with Keras | p50 latency, 1 thread |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in HOST_VARIANTS:
        row = rows[variant]
        size, accuracy, change, agreement = _measured(row)
        latency = row["p50_ms"].get("1", row["p50_ms"].get(1))
        cells = [variant, size, f"{row['size_ratio']:.2f}x", accuracy, change, agreement, f"{latency:.3f} ms"]
        out.append("| " + " | ".join(cells) + " |")
    return out


def emulated_table(folder: Path = SHIPPED) -> list[str]:
    """Millions of Arm instructions per image on the emulated Pis (x float32); the fewest within budget bold."""
    metadata = read_metadata(folder)
    sha = {name: str(v["sha256"]) for name, v in metadata["variants"].items()}
    benchmark = read_results_json(folder / "benchmark.json", "benchmark.json")
    columns = {c.name: c for c in emulated_columns(dict(benchmark.get("devices") or {}), sha)}
    rows = _rows(folder)
    cells: dict[str, list[str]] = {variant: [] for variant in HOST_VARIANTS}
    for device, interpreter, _ in EMULATED:
        counts = columns[device].counts[interpreter]
        budgeted = [v for v in HOST_VARIANTS if rows[v]["within_budget"] and "instructions" in counts.get(v, {})]
        fewest = min(budgeted, key=lambda v: counts[v]["instructions"])
        for variant in HOST_VARIANTS:
            row = counts.get(variant, {})
            if "instructions" not in row:
                cells[variant].append("cannot run")
                continue
            shown = f"{row['instructions'] / 1e6:.2f} ({row['ratio_to_float32']:.2f}x)"
            cells[variant].append(f"**{shown}**" if variant == fewest else shown)
    out = ["| variant | " + " | ".join(heading for _, _, heading in EMULATED) + " |", "|---" * 5 + "|"]
    return out + ["| " + " | ".join([variant, *cells[variant]]) + " |" for variant in HOST_VARIANTS]


def phone_table(folder: Path = SHIPPED) -> list[str]:
    """docs/phones.md's table: the MediaPipe variants' size, I/O types and accuracy."""
    metadata = read_metadata(folder)
    rows = _rows(folder)
    out = [
        "| variant | size | input / output | accuracy | vs Keras | agreement with Keras | use it for |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, use in PHONE_USE.items():
        info = metadata["variants"][variant]
        size, accuracy, change, agreement = _measured(rows[variant])
        io = f"{info['input']['dtype']} / {info['output']['dtype']}"
        out.append("| " + " | ".join([variant, size, io, accuracy, change, agreement, use]) + " |")
    return out


if __name__ == "__main__":
    shipped = Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED
    for table in (host_table(shipped), emulated_table(shipped), phone_table(shipped)):
        print("\n".join(table), end="\n\n")

"""How int8 ranges are calibrated, measured on every model of the suite (the evidence for the default).

For each model folder: a copy converted to int8 with each `--calibration` method on the same 300
training images, evaluated on the whole test split; plus how the folder's own `mixed` variant was
chosen. Numbers come from the pipeline's own convert and evaluate, as a user would get them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from edge_runtime.choices import Calibration, Precision
from pipeline.conversion.stage import ConvertConfig, convert
from pipeline.folder import METADATA_FILE, FolderStore
from pipeline.measure.evaluate import EvaluateConfig, evaluate
from pipeline.store.copies import copy_folder

# The mixed targets of the accuracy-aware quantization issue: (minimum test agreement, maximum size vs float32).
MIXED_TARGETS = {"cnn": (0.998, 0.5), "mobilenet_v2-a0.35-32px": (0.993, 0.45)}


def compare(name: str, folder: Path) -> list[dict[str, Any]]:
    """int8 agreement and accuracy change for each calibration method, on a scratch copy of `folder`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-pipeline-calibration-") as scratch:
        copy = Path(scratch) / folder.name
        copy_folder(folder, copy)  # its contract, each file checked; never a symlink followed (issue #28)
        for method in Calibration:
            convert(ConvertConfig(folder=copy, precisions=(Precision.INT8,), calibration=method))
            drift = evaluate(EvaluateConfig(folder=copy, precisions=(Precision.INT8,), max_drop=100.0)).variants[0]
            size = FolderStore(copy).load().variants["int8"].bytes
            rows.append(
                {
                    "model": name,
                    "calibration": str(method),
                    "agreement": drift.agreement,
                    "change_pp": drift.change_pp,
                    "size_kb": size / 1000,
                }
            )
    return rows


def mixed_choice(name: str, folder: Path) -> dict[str, Any] | None:
    """The folder's mixed record (float ops, selection and test agreement) with its size against float32."""
    metadata = json.loads((folder / METADATA_FILE).read_text())
    mixed = metadata["variants"].get("mixed")
    if not mixed:
        return None
    record = dict(mixed["mixed"])
    return {"model": name, **record, "float_ops": len(record.get("float_ops", []))}


def markdown(calibration: list[dict[str, Any]], mixed: list[dict[str, Any]]) -> list[str]:
    out = [
        "## int8 calibration methods",
        "",
        "Each model's int8 variant re-made with each `--calibration` method from the same 300 class-balanced "
        "training images, evaluated on the whole test split. `min-max` (the default) and `tf` estimate ranges the "
        "same way (widest value seen) through different tools; `moving-average` is ai-edge-quantizer's default.",
        "",
        "| model | calibration | agreement | vs Keras (pp) | size KB |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {r['model']} | {r['calibration']} | {r['agreement']:.2%} | {r['change_pp']:+.2f} | {r['size_kb']:,.1f} |"
        for r in calibration
    ]
    out += [
        "",
        "## How each mixed variant was chosen",
        "",
        "Candidates (float runs from the input or into the output, worst single ops) scored smallest first on "
        "validation images until the 95% lower bound of agreement met --min-agreement; reported on the test split.",
        "",
        "| model | chosen | float ops | x float32 | selection images | selection agreement | test agreement |",
        "|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {m['model']} | {m['chosen']} | {m['float_ops']} | {m['size_ratio']:.3f}x | {m['selection_images']:,} | "
        f"{m['selection_agreement']:.2f}% | {m.get('test_agreement', float('nan')):.2f}% |"
        for m in mixed
    ]
    return [*out, ""]


def shortfalls(rows: list[dict[str, Any]]) -> list[str]:
    """Notes for every mixed variant that misses its target."""
    out = []
    for row in rows:
        target = MIXED_TARGETS.get(row["model"])
        if row["precision"] != "mixed" or target is None:
            continue
        agreement, ratio = target
        if row["agreement"] < agreement or row["size_ratio"] > ratio:
            out.append(
                f"{row['model']} mixed agrees on {row['agreement']:.2%} at {row['size_ratio']:.3f}x float32 "
                f"(target at least {agreement:.1%} at most {ratio}x)."
            )
    return out

"""report.md's "Quantization" section: how int8 was calibrated, the layers furthest from float, how the
mixed variant was chosen, and the calibration sweep, from quantization.json and metadata.json."""

from __future__ import annotations

from typing import Any

from ..conversion.diagnostics import QuantizationReport
from ..conversion.layer_error import ROUNDING_FLOOR, worst
from ..conversion.mixed import lower_bound
from ..folder import CALIBRATION_PNG, QUANTIZATION_JSON, QUANTIZATION_PNG
from ..measure.intervals import images_to_show
from ..output.tables import md_code, md_text

WORST_LAYERS = 8
QUANTIZATION_PNG = QUANTIZATION_PNG
CALIBRATION_PNG = CALIBRATION_PNG
PNGS = (QUANTIZATION_PNG, CALIBRATION_PNG)


def summary(quant: QuantizationReport, mixed: dict[str, Any] | None) -> dict[str, Any]:
    """What the report shows, as plain data for report.json."""
    return {
        "calibration": quant.calibration,
        "calibration_samples": quant.calibration_samples,
        "worst_layers": [layer.to_dict() for layer in worst(quant.layers, WORST_LAYERS)],
        "layers": [{"label": f"{x.index} {x.op}", "snr_db": round(x.snr_db, 2)} for x in quant.layers if x.index >= 0],
        "mixed": mixed,
        "sweep": quant.sweep_table(),
        "sweep_runs": quant.sweep,
    }


def _worst(data: dict[str, Any], has: dict[str, bool]) -> list[str]:
    layers = data["worst_layers"]
    if not layers:
        return []
    out = [
        "### int8 layers furthest from float",
        "",
        "Each int8 activation against the float32 model's on calibration images. RMSE/step: the error in "
        f"quantization steps (rounding alone gives {ROUNDING_FLOOR:.2f}); SNR: signal over error power "
        "(8 bits of a well-used range give about 40 dB).",
        "",
        "| op | kind | RMSE/step | SNR dB | tensor |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {x['index']} | {md_text(x['op'])} | {x['rmse_scale']:.2f} | {x['snr_db']:.1f} | "
        f"{md_code(str(x['tensor'])[:60], in_table=True)} |"
        for x in layers
    ]
    out += [""]
    if has.get(QUANTIZATION_PNG):
        out += [f"![int8 signal-to-noise per layer]({QUANTIZATION_PNG})", ""]
    return out


def _mixed(mixed: dict[str, Any] | None) -> list[str]:
    if not mixed:
        return []
    test = mixed.get("test_agreement")
    tested = f"; on the test split it agrees on {test:.2f}%" if test is not None else ""
    floats = md_text(", ".join(map(str, mixed.get("float_ops", []))) or "none")
    verdict, why = _target_verdict(mixed)
    return [
        "### How the mixed variant was chosen",
        "",
        f"Chosen: **{md_text(mixed['chosen'])}** (float ops: {floats}), {mixed['size_ratio']:.3f}x the float32 size. "
        f"On {mixed['selection_images']:,} validation images it agrees with Keras on "
        f"{mixed['selection_agreement']:.2f}% (95% lower bound {mixed['selection_lower_bound']:.2f}%), which "
        f"{verdict} --min-agreement {mixed['min_agreement']:g}% within --max-float-share {mixed['max_float_share']:g}"
        f"{tested}.{why} "
        f"{mixed['candidates_tried']} candidates were scored, smallest first (runs of float ops from "
        "the input, runs into the output, the worst single ops); quantization.json lists them.",
        "",
    ]


def _target_verdict(mixed: dict[str, Any]) -> tuple[str, str]:
    """Met or not, and, when the Wilson lower bound decides against the measured agreement, why, in one sentence."""
    target = float(mixed["min_agreement"])
    if mixed.get("target_met"):
        return "meets", ""
    if float(mixed["selection_agreement"]) < target:
        return "does NOT meet", ""
    images = int(mixed["selection_images"])
    return "cannot show", (
        f" Too few images to show it: the search asks the Wilson 95% lower bound of the agreement to reach the target, "
        f"so that it holds beyond these images, and {images:,} images all agreeing give at most "
        f"{lower_bound(images, images):.2f}% ({images_to_show(target / 100):,} would show {target:g}%)."
    )


def _sweep(data: dict[str, Any], has: dict[str, bool]) -> list[str]:
    rows = data["sweep"]
    if not rows:
        return []
    out = [
        "### Calibration sweep",
        "",
        "int8 agreement with Keras on the test split for each calibration size, each drawn with "
        f"{rows[0]['seeds']} seeds: the spread is calibration noise.",
        "",
        "| calibration images | seeds | mean | min | max |",
        "|---|---|---|---|---|",
    ]
    out += [f"| {r['samples']:,} | {r['seeds']} | {r['mean']:.2f}% | {r['min']:.2f}% | {r['max']:.2f}% |" for r in rows]
    out += [""]
    if has.get(CALIBRATION_PNG):
        out += [f"![int8 agreement per calibration size]({CALIBRATION_PNG})", ""]
    return out


def section(data: dict[str, Any] | None, has: dict[str, bool]) -> list[str]:
    """Markdown lines; none when the folder has no integer variant measured."""
    if not data:
        return []
    head = [
        "## Quantization",
        "",
        f"int8 activation ranges: {md_code(data['calibration'])} calibration on {data['calibration_samples']:,} "
        f"class-balanced training images (details in {QUANTIZATION_JSON}).",
        "",
    ]
    return [*head, *_worst(data, has), *_mixed(data["mixed"]), *_sweep(data, has)]

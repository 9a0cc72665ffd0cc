"""The benchmark suite on an emulated Raspberry Pi: Arm instructions per image for every model and precision.

    python benchmarks/emulated_cost.py           # about 10 minutes on 2 cores (the emulated Pi built already)
    python benchmarks/emulated_cost.py --render  # the table and plot again from the last run's JSON

Counts do not depend on trained weights (the kernels an interpreter picks depend on the architecture, the
precision and the CPU), so each of the suite's models is trained for one epoch on 1,000 images and converted
to every precision; MobileNetV2 1.0 224 (the suite's untrained one) is counted in float32 and int8 and checked
against the one published Pi 5 figure we have (XNNPACK: float32 10.9 ms, int8 4.0 ms, 2.7x). Host latency of
the same files, timed here interleaved, stands beside: the training machine ranks the precisions differently.
Writes benchmarks/results/emulated_cost.md, .json and .png.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.suite import QUICK, build_folder, log, mobilenet_224  # noqa: E402
from edge_runtime.backends import load_interpreter  # noqa: E402
from edge_runtime.bench import fill_inputs, time_invokes  # noqa: E402
from pipeline.devices import instructions  # noqa: E402
from pipeline.devices.emulator import build, cache_dir  # noqa: E402
from pipeline.folder import FolderStore, atomic_path, atomic_write_json, atomic_write_text  # noqa: E402
from pipeline.measure.benchmark import machine_info  # noqa: E402

WORK = ROOT / "benchmarks" / "work" / "emulated"
OUT = ROOT / "benchmarks" / "results"
CPUS = ("cortex-a76", "cortex-a53")
INTERPRETERS = ("litert", "tflite-runtime")
PUBLISHED_PI5 = {"float32": 10.9, "int8": 4.0}  # ms, MobileNetV2 1.0 224, XNNPACK on a Raspberry Pi 5


def host_p50(files: dict[str, Path], rounds: int = 10, per_round: int = 20) -> dict[str, float]:
    """p50 invoke() latency here, 1 thread, the files interleaved round by round."""
    loaded = {}
    for name, path in files.items():
        interpreter, _ = load_interpreter(path, 1)
        fill_inputs(interpreter)
        time_invokes(interpreter, 5)
        loaded[name] = interpreter
    samples: dict[str, list[float]] = {name: [] for name in files}
    names = list(files)
    for turn in range(rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            samples[name] += time_invokes(loaded[name], per_round)
    return {name: float(np.median(values)) for name, values in samples.items()}


def counted(files: dict[str, Path]) -> dict[str, dict[str, dict[str, Any]]]:
    """cpu -> interpreter -> file -> row, for every CPU and interpreter of the emulated Pi."""
    emulator, plugin = build(log=log), instructions.plugin(cache_dir().parent)
    contents = {path.name: path.read_bytes() for path in files.values()}
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for cpu in CPUS:
        for interpreter in INTERPRETERS:
            log(f"counting {len(files)} files on {cpu}, {interpreter}")
            run = instructions.Run(emulator, instructions.CPUS[cpu], interpreter, plugin)
            found.setdefault(cpu, {})[interpreter] = instructions.count(run, contents)
    return found


def model_files() -> dict[str, dict[str, Path]]:
    """model -> precision -> .tflite: the suite's models (one epoch each) and MobileNetV2 1.0 224."""
    models = {}
    for entry in QUICK:
        folder = build_folder(entry, WORK, reuse=True, runs=20)
        metadata = FolderStore(folder).load()
        models[entry.name] = {name: folder / v.file for name, v in metadata.variants.items()}
    models["mobilenet_v2-a1.0-224px"] = mobilenet_224(WORK, 1.0)
    return models


def collect() -> dict[str, Any]:
    rows = []
    for model, files in model_files().items():
        counts = counted(files)
        host = host_p50(files)
        for precision, path in files.items():
            row: dict[str, Any] = {"model": model, "precision": precision, "host_p50_ms": host[precision]}
            for cpu in CPUS:
                for interpreter in INTERPRETERS:
                    found = counts[cpu][interpreter][path.name]
                    row[f"{cpu}/{interpreter}"] = found.get("instructions")
                    row[f"{cpu}/{interpreter}/dots"] = found.get("dot_instructions")
                    row[f"{cpu}/{interpreter}/error"] = found.get("error")
            rows.append(row)
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(), "rows": rows}


def _m(value: int | None) -> str:
    return "cannot run" if value is None else f"{value / 1e6:,.2f}"


def _ratio(rows: list[dict[str, Any]], row: dict[str, Any], key: str) -> str:
    base = next((r for r in rows if r["model"] == row["model"] and r["precision"] == "float32"), None)
    if base is None or not row.get(key) or not base.get(key):
        return "-"
    return f"{row[key] / base[key]:.2f}x"


def proxy(results: dict[str, Any]) -> dict[str, float]:
    model = [r for r in results["rows"] if r["model"] == "mobilenet_v2-a1.0-224px"]
    fp32, int8 = (next(r for r in model if r["precision"] == p) for p in ("float32", "int8"))
    key = "cortex-a76/litert"
    return {
        "instructions_ratio": fp32[key] / int8[key],
        "published_latency_ratio": PUBLISHED_PI5["float32"] / PUBLISHED_PI5["int8"],
        "host_latency_ratio": fp32["host_p50_ms"] / int8["host_p50_ms"],
        "legacy_ratio": (
            fp32["cortex-a76/tflite-runtime"] / int8["cortex-a76/tflite-runtime"]
            if int8["cortex-a76/tflite-runtime"]
            else None
        ),
        "legacy_error": int8["cortex-a76/tflite-runtime/error"],
        "int8_dots": int8[f"{key}/dots"],
    }


def markdown(results: dict[str, Any]) -> str:
    rows, machine, check = results["rows"], results["machine"], proxy(results)
    out = [
        "# The suite on an emulated Raspberry Pi: instructions per image",
        "",
        f"Run on {results['date']}; host {machine['cpu']}, {machine['cores']} cores. Executed Arm instructions per "
        "image (median of the invokes after the first, 1 thread) under qemu-user 7.2 emulating each core with its "
        "board's /proc/cpuinfo (`edge-pipeline benchmark --emulate`); host latency of the same files, interleaved, "
        "beside. Counts are exact and repeat to the instruction; they are not cycles (no memory stalls; an SDOT "
        "counts as one). Regenerate with `python benchmarks/emulated_cost.py`.",
        "",
        f"**The proxy against the one published figure:** MobileNetV2 1.0 224 on Cortex-A76 with ai-edge-litert "
        f"costs {check['instructions_ratio']:.2f}x more instructions in float32 than in int8 "
        f"({check['int8_dots'] / 1e6:.1f} M SDOT instructions per int8 image); the published Pi 5 latency ratio is "
        f"{check['published_latency_ratio']:.2f}x (10.9 ms / 4.0 ms, XNNPACK). On this host the same two files run "
        f"{check['host_latency_ratio']:.2f}x apart. "
        + (
            f"On tflite-runtime 2.14 (which does not hand int8 to XNNPACK) {check['legacy_ratio']:.2f}x."
            if check["legacy_ratio"]
            else "tflite-runtime 2.14 cannot run this int8 file at all (untrained weights give a depthwise layer a "
            f"quantization scale its kernel refuses: {check['legacy_error']}); the litert numbers stand alone."
        ),
        "",
        "| model | precision | host p50 ms | A76 litert M instr (x float32) | A76 M SDOT | A76 tflite-runtime M instr "
        "| A53 litert M instr (x float32) | A53 tflite-runtime M instr |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['precision']} | {r['host_p50_ms']:.3f} | {_m(r['cortex-a76/litert'])} "
            f"({_ratio(rows, r, 'cortex-a76/litert')}) | {_m(r['cortex-a76/litert/dots'])} | "
            f"{_m(r['cortex-a76/tflite-runtime'])} | {_m(r['cortex-a53/litert'])} "
            f"({_ratio(rows, r, 'cortex-a53/litert')}) | {_m(r['cortex-a53/tflite-runtime'])} |"
        )
    out += ["", "![instructions and latency against float32, per model](emulated_cost.png)", ""]
    return "\n".join(out) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    from pipeline.output.plots import _pyplot

    plt = _pyplot()
    rows = [r for r in results["rows"] if r["precision"] in ("float16", "dynamic", "int8", "mixed")]
    labels = [f"{r['model']}\n{r['precision']}" for r in rows]
    keys = [("host_p50_ms", "host latency"), ("cortex-a76/litert", "Cortex-A76 instructions"),
            ("cortex-a53/litert", "Cortex-A53 instructions")]  # fmt: skip
    figure, axis = plt.subplots(figsize=(max(8, len(rows) * 0.7), 4.5))
    for offset, (key, name) in enumerate(keys):
        values = [float(_ratio(results["rows"], r, key).rstrip("x")) if _ratio(results["rows"], r, key) != "-" else 0
                  for r in rows]  # fmt: skip
        axis.bar(np.arange(len(rows)) + (offset - 1) * 0.27, values, 0.27, label=name)
    axis.axhline(1.0, color="gray", linewidth=0.8)
    axis.set_xticks(np.arange(len(rows)), labels, rotation=60, ha="right", fontsize=7)
    axis.set_ylabel("x float32 (lower is cheaper)")
    axis.set_title("Each precision against float32: this host's latency, and an emulated Pi's instructions")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    rendering = "--render" in sys.argv  # redraw the table and plot from the last run's JSON
    results = json.loads((OUT / "emulated_cost.json").read_text()) if rendering else collect()
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT / "emulated_cost.json", results)
    with atomic_path(OUT / "emulated_cost.png") as picture:
        plot(results, picture)
    atomic_write_text(OUT / "emulated_cost.md", markdown(results))
    print(json.dumps(proxy(results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark suite's README.md, rendered from its results.json alone (so a table can be redrawn without
measuring again): one function per section."""

from __future__ import annotations

from typing import Any

from benchmarks import calibration


def _models_section(results: dict[str, Any]) -> list[str]:
    """The title, the machine, and the models x precisions table."""
    machine = results["machine"]
    out = [
        "# Benchmark suite results",
        "",
        f"Run on {results['date']}: {machine['cpu']}, {machine['cores']} cores, {machine['os']}; interpreter "
        f"{machine['interpreter']}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in machine['versions'].items())}.",
        "",
        "Every model was trained on Fashion-MNIST (60,000 training images, the 10,000 test images for accuracy) with "
        "`--weights none` (ImageNet weights are not available offline), converted to every precision, and timed "
        "with "
        "`edge-pipeline benchmark` (invoke() on random input, 20 warm-up then 200 timed runs, variants interleaved in "
        "10 rounds). "
        "Regenerate with `make benchmark` (`python benchmarks/suite.py`).",
        "",
        "## Models x precisions",
        "",
        "| model | precision | params | size KB | x float32 | accuracy | vs Keras (pp) | agreement | p50 ms @1t | p50 "
        "ms @2t | "
        "speed-up @1t | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        mark = " *" if r["recommended"] else ""
        out.append(
            f"| {r['model']} | {r['precision']}{mark} | {r['parameters']:,} | {r['size_kb']:,.1f} | "
            f"{r['size_ratio']:.2f}x | "
            f"{r['accuracy']:.2%} | {r['change_pp']:+.2f} | {r['agreement']:.2%} | {r['p50_ms']['1']:.3f} | "
            f"{r['p50_ms']['2']:.3f} | "
            f"{r['speedup']['1']:.2f}x | {r['peak_memory_mb']:.1f} |"
        )
    out += [
        "",
        "`*` the variant each model's own report recommends (smallest within 1 pp of Keras that is as fast as the "
        "fastest). "
        "Peak memory is that of a separate `edge-runtime bench` process (interpreter only).",
        "",
        "![accuracy against latency, marker area by model size](comparison.png)",
        "",
    ]
    return out


def _cold_start_section(results: dict[str, Any]) -> list[str]:
    """edge_runtime's cold start against importing TensorFlow."""
    cold = results["cold_start"]
    edge, tf_import, tf_predict = cold["edge_runtime"], cold["import_tensorflow"], cold["tensorflow_interpreter"]
    return [
        "## Cold start (edge_runtime)",
        "",
        f"Fresh process: import, load `{cold['model']}`, predict one PNG; median of {cold['repeats']} runs, "
        "interleaved.",
        "",
        "| | seconds (median) | peak MB |",
        "|---|---|---|",
        f"| edge_runtime ({edge['backend']}) | {edge['median_s']:.3f} | {edge['peak_mb']:.1f} |",
        f"| `import tensorflow` alone | {tf_import['median_s']:.3f} | {tf_import['peak_mb']:.1f} |",
        f"| edge_runtime on tf.lite (import TensorFlow, load, predict) | {tf_predict['median_s']:.3f} | "
        f"{tf_predict['peak_mb']:.1f} |",
        "",
        f"edge_runtime starts {cold['speedup_vs_import_tensorflow']:.1f}x faster than TensorFlow imports, in "
        f"{cold['memory_ratio_vs_import_tensorflow']:.1f}x less memory; TensorFlow imported: "
        f"{edge['tensorflow_imported']}.",
        "",
    ]


def _overhead_section(results: dict[str, Any]) -> list[str]:
    """What predict() costs beyond invoke() on a camera-sized JPEG."""
    out = [
        "## Per-image overhead (edge_runtime)",
        "",
        "One 640x480 JPEG through `predict()` on an untrained 224x224 MobileNetV2 (alpha 1.0), 1 thread; medians in "
        "ms.",
        "",
        "| model | decode + resize | quantize | invoke | dequantize + top-k | overhead / invoke | overhead without "
        "decode / invoke |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in results["per_image_overhead"]:
        m = item["median_ms"]
        out.append(
            f"| {item['model']} | {m['decode_resize']:.3f} | {m['quantize']:.3f} | {m['invoke']:.3f} | "
            f"{m['dequantize_top_k']:.3f} | "
            f"{item['overhead_share_of_invoke']:.1%} | {item['overhead_without_decode_ms'] / m['invoke']:.1%} |"
        )
    return out


def _throughput_section(results: dict[str, Any]) -> list[str]:
    """Batched against one-at-a-time evaluation."""
    out = [
        "",
        "## Evaluation throughput",
        "",
        "The cnn's 10,000 test images through `Predictor.scores` (what `edge-pipeline evaluate` runs), 2 threads.",
        "",
        "| precision | batched images/s | one per invoke() images/s | speed-up |",
        "|---|---|---|---|",
    ]
    for precision, item in results["evaluation_throughput"].items():
        out.append(
            f"| {precision} | {item['batched_images_per_s']:,.0f} | {item['one_at_a_time_images_per_s']:,.0f} | "
            f"{item['speedup']:.1f}x |"
        )
    return out


def _trust_section(results: dict[str, Any]) -> list[str]:
    """Our latency against the official LiteRT benchmark tool's."""
    resolved = [i for i in results["trust_check"] if i["resolved"]]
    agree = sum(i["within_10_percent"] for i in resolved)
    out = [
        "",
        "## Trust check: our latency against the official LiteRT benchmark",
        "",
        "`edge-runtime bench` (Interpreter.invoke) against `ai_edge_litert/tools/benchmark_litert_model.py` "
        "(CompiledModel), "
        f"same model and thread count, fresh processes, alternated over {results['trust_rounds']} rounds; medians of "
        "p50. The official tool rounds to "
        "0.01 ms, so the 10% check counts models of 1 ms and more; below that its figure is too coarse to check "
        "against "
        f"(shown for completeness). Within 10%: {agree} of {len(resolved)} checkable rows.",
        "",
        "| model | file | threads | ours p50 ms | official median ms | ratio | within 10% |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in results["trust_check"]:
        out.append(
            f"| {item['folder']} | {item['model']} | {item['threads']} | {item['ours_p50_ms']:.3f} | "
            f"{item['official_median_ms']:.3f} | "
            f"{item['ratio']:.3f} | "
            f"{('yes' if item['within_10_percent'] else 'no') if item['resolved'] else 'n/a (< 1 ms)'} |"
        )
    return out


# The benchmarks that write pages of their own beside this one (each regenerated by its own script).
OTHER_PAGES = (
    ("training_memory.md", "peak memory of a MobileNetV2 training epoch on 1,500 against 6,000 photos, with the "
     "image statistics before and after issue #28 (`benchmarks/training_memory.py`)"),
    ("streaming_memory.md", "the same, image folders streamed from disk against held in memory "
     "(`benchmarks/streaming_memory.py`)"),
    ("stream_rate.md", "a camera stream through the shipped model (`benchmarks/stream_rate.py`)"),
    ("emulated_cost.md", "instructions per image on an emulated Raspberry Pi (`benchmarks/emulated_cost.py`)"),
)  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    """benchmarks/results/README.md from results.json (re-rendered byte for byte from the JSON)."""
    out = _models_section(results)
    out += calibration.markdown(results.get("calibration", []), results.get("mixed", []))
    out += _cold_start_section(results) + _overhead_section(results) + _throughput_section(results)
    out += _trust_section(results)
    if results.get("notes"):
        out += ["", "## Notes", "", *[f"- {note}" for note in results["notes"]]]
    out += ["", "## Other benchmarks", "", *[f"- [{page}]({page}): {what}" for page, what in OTHER_PAGES]]
    return "\n".join(out) + "\n"

"""What edge_runtime's check of a .tflite file costs, against what loading it into an interpreter costs.

For each model: the check as a device runs it (``backends.check_model_bytes`` on the file's bytes: the
schema verifier, then the semantic walk), each part alone, the Python memory it allocates at peak
(tracemalloc), and ai-edge-litert's load (``Interpreter(model_content=...)`` + ``allocate_tensors``), all
in this process, medians of --repeats runs. Then what a child-process probe would cost instead: a fresh
python that imports the interpreter, loads, allocates and invokes the model once (the way to turn a crash
into one line when a check cannot see it coming). The models: the shipped cnn's variants, Coral's
MobileNetV1, and Keras' MobileNetV2 (alpha 1.0, 224 px: the 14 MB float32 file) and ResNet50 (98 MB)
with untrained weights, converted here (TensorFlow needed; cached in --work).

    flock /tmp/heavy.lock python -m benchmarks.verifier_cost [--model NAME=PATH ...]

Writes benchmarks/results/verifier_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from benchmarks.model_fuzzing import ROOT

RESULTS = ROOT / "benchmarks" / "results"
CORAL = ROOT.parent / "shared" / "third_party" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"
PROBE = """
import sys, time
began = time.perf_counter()
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
print(time.perf_counter() - began)
"""


def keras_model(name: str, work: Path) -> Path:
    """A Keras application with untrained weights, converted to float32 TFLite (cached)."""
    path = work / f"{name}.tflite"
    if not path.exists():
        import keras
        import tensorflow as tf

        model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
        work.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def probe(path: Path) -> tuple[float, float]:
    """(ms from start to exit, ms inside after start-up) of one child process loading and invoking the model."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
    return (time.perf_counter() - began) * 1000, float(done.stdout) * 1000


def working_mib(content: bytes) -> float:
    """What the check counts against its 1 GiB bound: the non-constant tensors of the first subgraph, declared."""
    from edge_runtime.tflite import structure

    reader = structure.Reader(content)
    model = structure.Table(reader, reader.u32(0), "model")
    buffers = model.tables(4, "buffer")
    tensors = model.tables(2, "subgraph")[0].tables(0, "tensor")
    return sum(structure._tensor(t, buffers, reader, "tensor") for t in tensors) / 2**20  # noqa: SLF001


def measure(name: str, path: Path, repeats: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    from edge_runtime.backends import check_model_bytes
    from edge_runtime.tflite import verifier

    content = path.read_bytes()
    tracemalloc.start()
    check_model_bytes(content, path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    def load() -> None:
        Interpreter(model_content=content, num_threads=1).allocate_tensors()

    check = median_ms(lambda: check_model_bytes(content, path), repeats)
    verify = median_ms(lambda: verifier.verify(content), repeats)
    loading = median_ms(load, repeats)
    probes = [probe(path) for _ in range(3)]
    return {
        "model": name, "bytes": len(content), "tables": verifier.verify(content), "check_ms": round(check, 2),
        "verify_ms": round(verify, 2), "semantic_ms": round(check - verify, 2), "peak_kb": round(peak / 1024, 1),
        "load_ms": round(loading, 2), "ratio": round(check / loading, 3),
        "working_mib": round(working_mib(content), 2),
        "probe_ms": round(statistics.median(p[0] for p in probes), 1),
        "probe_inside_ms": round(statistics.median(p[1] for p in probes), 1),
    }  # fmt: skip


def markdown(rows: list[dict]) -> str:
    lines = [
        "# The check's cost against the interpreter's load",
        "",
        f"Run on {time.strftime('%Y-%m-%d')} on this 2-core machine (`python -m benchmarks.verifier_cost`). "
        "`check`: `backends.check_model_bytes` on the file's bytes, as every load runs it (`verify`: the schema "
        "verifier alone; `semantic`: the rest). `load`: ai-edge-litert's `Interpreter(model_content)` + "
        "`allocate_tensors` in the same process. `ratio`: check / load. `peak`: Python memory the check "
        "allocates (tracemalloc). `probe`: a child process that loads, allocates and invokes the model once, "
        "start to exit (`inside`: its own time after start-up). `tensors MiB`: what the check holds to 1 GiB, "
        "the model's non-constant tensors at their declared shapes. Medians.",
        "",
        "| model | MB | tables | tensors MiB | check ms | verify ms | semantic ms | peak KB | load ms | ratio "
        "| probe ms | inside |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row["model"], f"{row['bytes'] / 1e6:.2f}", row["tables"], row["working_mib"],
            row["check_ms"], row["verify_ms"],
            row["semantic_ms"], row["peak_kb"], row["load_ms"], f"{row['ratio']:.2f}x", row["probe_ms"],
            row["probe_inside_ms"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH of another .tflite file")
    parser.add_argument("--work", type=Path, default=Path("/tmp/verifier-cost"))
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args(argv)
    models = {f"cnn {p.stem[6:]}": p for p in sorted((ROOT / "models" / "fashion-mnist-cnn").glob("model_*.tflite"))}
    if CORAL.exists():
        models["coral mobilenet_v1 0.25 int8"] = CORAL
    models.update({name: Path(path) for name, _, path in (m.partition("=") for m in options.model)})
    for name in ("MobileNetV2", "ResNet50"):
        models[f"{name} float32"] = keras_model(name, options.work)
    rows = []
    for name, path in models.items():
        rows.append(measure(name, path, options.repeats))
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "verifier_cost.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "verifier_cost.md").write_text(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mutated .tflite files against real interpreters: does any of them crash one behind edge_runtime's check?

Each mutant is a model with one to three mutations, most of them where an interpreter follows offsets
(the FlatBuffer's tables, vtables, offsets and vector lengths, found by walking the file with
edge_runtime's verifier), some anywhere: a byte replaced, a bit flipped, 2-8 bytes replaced, a 32-bit
offset or length (or a 16-bit vtable entry) overwritten with a boundary value (0, -1, 0x7fffffff,
0x80000000, its value +-1, the file's length +1), a truncation. A worker process per interpreter loads
each mutant (edge_runtime's check, then the interpreter: load, allocate, invoke on zeros) and prints
one outcome; a crash ends the worker, which is noted and restarted after the crasher. ``--raw`` runs
the same mutants with no check in front, to show what the check prevents.

    flock /tmp/heavy.lock python -m benchmarks.model_fuzzing --model cnn=PATH --model mnv2=PATH \\
        --model coral=PATH --mutants 1000 --seeds 1,2,3 --python tflite-runtime-2.14=/tmp/tfl214/bin/python \\
        --python ai-edge-litert-2.3=.venv/bin/python

Writes benchmarks/results/model_fuzzing.{json,md}. tests/test_model_fuzzing.py runs a smaller campaign.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import selectors
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUTCOMES = ("RAN", "CHECK", "INTERPRETER", "CRASH", "HANG", "TRACEBACK")
MEMORY_LIMIT = 3 << 30  # address space of a worker: a mutant asking for more fails there, not on the machine
WORKER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import numpy as np
raw = sys.argv[1] == "raw"
if raw:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
else:
    from edge_runtime import backends
    from edge_runtime.errors import EdgeRuntimeError
def zeros(interpreter):
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
for path in sys.argv[2:]:
    print("START", path, flush=True)
    try:
        if raw:
            interpreter = Interpreter(model_path=path)
            interpreter.allocate_tensors()
            zeros(interpreter)
            interpreter.invoke()
            print("RAN", flush=True)
            continue
        try:
            content = backends.read_model_bytes(path)
        except EdgeRuntimeError as error:
            print("CHECK", str(error).splitlines()[0][:300], flush=True)
            continue
        try:
            interpreter, _ = backends.load_interpreter(path, threads=1, content=content)
            zeros(interpreter)
            backends.invoke(interpreter, path)
            print("RAN", flush=True)
        except EdgeRuntimeError as error:
            print("INTERPRETER", str(error).splitlines()[0][:300], flush=True)
    except BaseException as error:
        kind = "INTERPRETER" if raw else "TRACEBACK"
        print(kind, type(error).__name__, str(error).splitlines()[0][:300] if str(error) else "", flush=True)
"""
BAD = ("CRASH", "HANG", "TRACEBACK")
BOUNDARY = (0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000)


def landmarks(content: bytes) -> dict[str, list[int]]:
    """Where the FlatBuffer keeps what a reader follows: offsets, vector lengths, tables' vtable offsets, vtables."""
    from edge_runtime.tflite.verifier import Verifier

    found: dict[str, list[int]] = {"offset": [], "length": [], "table": [], "vtable": [], "element": []}
    found.update({f"scalar{width}": [] for width in (1, 2, 4, 8)})

    class Recorder(Verifier):
        def offset(self, at: int, what: str) -> int:
            found["offset"].append(at)
            return super().offset(at, what)

        def vector(self, at: int, width: int, what: str) -> tuple[int, int]:
            found["length"].append(at)
            start, count = super().vector(at, width, what)
            if width == 4 and count <= 64:  # shapes, tensor indices, options' int lists; not weights
                found["element"].extend(range(start, start + 4 * count, 4))
            return start, count

        def scalar(self, at: int, width: int, table: str, slot: int) -> None:
            found[f"scalar{width}"].append(at)
            super().scalar(at, width, table, slot)

        def fields(self, at: int, name: str, vtable: int, vsize: int, tsize: int, depth: int) -> None:
            found["table"].append(at)
            found["vtable"].extend(range(vtable, vtable + vsize, 2))
            super().fields(at, name, vtable, vsize, tsize, depth)

    Recorder(content).verify()
    return {kind: sorted(set(spots)) for kind, spots in found.items()}


def _weights(content: bytes) -> list[tuple[int, int]]:
    """Byte ranges of buffer data (the weights): mutations there change answers, not structure."""
    from edge_runtime.tflite.requirements import root

    spans = []
    for buffer in root(content).tables(4, "buffer"):
        found = buffer.vector(0, 1, "data")
        if found is not None and found[1] > 16:
            spans.append((found[0], found[0] + found[1]))
    return spans


@dataclass
class Target:
    """One model's bytes and where to aim at it."""

    content: bytes
    spots: dict[str, list[int]] = field(default_factory=dict)
    weights: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, content: bytes) -> Target:
        return cls(content, landmarks(content), _weights(content))

    def structural(self, rng: random.Random) -> int:
        """A random byte of the FlatBuffer outside the weights."""
        while True:
            at = rng.randrange(8, len(self.content) - 4)
            if not any(start <= at < end for start, end in self.weights):
                return at


def _value(data: bytearray, target: Target, rng: random.Random) -> str:
    """A table's scalar field or an int vector's element (a stride, an axis, a dimension, an index) set to an edge."""
    width = rng.choice((1, 4, 4, 4, 0))
    kind = f"scalar{width}" if width else "element"
    width = width or 4
    if not target.spots[kind]:
        return "nothing"
    at = rng.choice(target.spots[kind])
    bits = 8 * width
    value = rng.choice((0, 1, -1, 2, (1 << (bits - 1)) - 1, -(1 << (bits - 1)), 1 << (bits // 2), rng.randrange(256)))
    data[at : at + width] = (value & ((1 << bits) - 1)).to_bytes(width, "little")
    return f"{kind} {value} at {at}"


def _overwrite(data: bytearray, target: Target, rng: random.Random) -> str:
    kind = rng.choice(("offset", "length", "length", "table", "vtable"))
    at = rng.choice(target.spots[kind])
    if kind == "vtable":
        value = rng.choice((0, 1, 3, 0xFFFF, 0x8000, struct.unpack_from("<H", data, at)[0] + rng.choice((-4, 4))))
        struct.pack_into("<H", data, at, value & 0xFFFF)
        return f"u16 {value & 0xFFFF:#x} at {at} ({kind})"
    current = struct.unpack_from("<I", data, at)[0]
    value = rng.choice((*BOUNDARY, current + 1, current - 1, len(data) + 1, rng.randrange(1 << 32))) & 0xFFFFFFFF
    struct.pack_into("<I", data, at, value)
    return f"u32 {value:#x} at {at} ({kind})"


def mutate(target: Target, rng: random.Random) -> tuple[bytes, list[str]]:
    """A mutant of the target's model and what was done to it."""
    data, done = bytearray(target.content), []
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.3:
            done.append(_overwrite(data, target, rng))
        elif kind < 0.5:
            done.append(_value(data, target, rng))
        elif kind < 0.65:
            at = target.structural(rng)
            data[at] = rng.randrange(256)
            done.append(f"byte {data[at]:#x} at {at}")
        elif kind < 0.78:
            at = target.structural(rng)
            data[at] ^= 1 << rng.randrange(8)
            done.append(f"bit flip at {at}")
        elif kind < 0.88:
            at, count = target.structural(rng), rng.randint(2, 8)
            data[at : at + count] = bytes(rng.randrange(256) for _ in range(count))
            done.append(f"{count} bytes at {at}")
        elif kind < 0.95:
            at = rng.randrange(8, len(data))
            data[at] = rng.randrange(256)
            done.append(f"byte {data[at]:#x} at {at} (anywhere)")
        else:
            cut = rng.randrange(8, len(data))
            done.append(f"truncated to {cut}")
            return bytes(data[:cut]), done
    return bytes(data), done


def write_mutants(content: bytes, folder: Path, count: int, seed: int) -> list[tuple[Path, list[str]]]:
    target, rng, made = Target.of(content), random.Random(seed), []
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        data, done = mutate(target, rng)
        path = folder / f"mutant-{seed}-{index:04d}.tflite"
        path.write_bytes(data)
        made.append((path, done))
    return made


def _collect(worker: subprocess.Popen, timeout: float) -> tuple[dict[str, tuple[str, str]], str | None, bool]:
    """(outcome of each mutant the worker finished, the one it was on when it stopped, whether it hung)."""
    outcomes: dict[str, tuple[str, str]] = {}
    current, selector = None, selectors.DefaultSelector()
    selector.register(worker.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    while True:
        if not selector.select(timeout):
            worker.kill()
            worker.wait()
            return outcomes, current, True
        line = worker.stdout.readline()  # type: ignore[union-attr]
        if not line:
            worker.wait()
            return outcomes, current, False
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "START":
            current = rest
        elif kind in OUTCOMES and current is not None:
            outcomes[current] = (kind, rest)
            current = None


def run(
    python: str, paths: list[Path], raw: bool = False, timeout: float = 120.0, code: Path = ROOT
) -> dict[str, tuple[str, str]]:
    """Each mutant's outcome in one interpreter (restarting the worker after each crash or hang).

    `code`: the checkout whose edge_runtime the worker imports (another one's, to compare checks).
    """
    results: dict[str, tuple[str, str]] = {}
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = WORKER.format(limit=MEMORY_LIMIT)
    names, start = [str(p) for p in paths], 0
    while start < len(names):
        worker = subprocess.Popen(
            [python, "-c", script, "raw" if raw else "checked", *names[start:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=code,  # `python -c` puts the working folder first on sys.path
        )
        outcomes, current, hung = _collect(worker, timeout)
        results.update(outcomes)
        if current is None:
            if worker.returncode != 0 and len(results) < len(names):
                raise RuntimeError(f"the worker failed outside any mutant (exit {worker.returncode})")
            break
        results[current] = ("HANG", "") if hung else ("CRASH", f"signal {-worker.returncode}")
        start = names.index(current) + 1
    return results


def _row(model: str, seed: int, interpreter: str, raw: bool, results: dict, seconds: float) -> dict:
    counts = Counter(kind for kind, _ in results.values())
    return {
        "model": model, "seed": seed, "interpreter": interpreter, "check": not raw, "mutants": len(results),
        **{kind: counts.get(kind, 0) for kind in OUTCOMES}, "seconds": round(seconds, 1),
    }  # fmt: skip


def campaign(models: dict[str, Path], pythons: dict[str, str], work: Path, options: argparse.Namespace) -> dict:
    """Every model x seed x interpreter (and the unchecked baseline when asked): counts, crashers, refusals."""
    rows, failures, refusals = [], {}, Counter()
    modes = [(name, False) for name in pythons] + ([(name, True) for name in pythons] if options.raw else [])
    for model, path in models.items():
        content = path.read_bytes()
        for seed in options.seeds:
            mutants = write_mutants(content, work / model / str(seed), options.mutants, seed)
            how = {str(p): done for p, done in mutants}
            for interpreter, raw in modes:
                began = time.monotonic()
                results = run(pythons[interpreter], [p for p, _ in mutants], raw=raw, code=options.code)
                rows.append(_row(model, seed, interpreter, raw, results, time.monotonic() - began))
                print(json.dumps(rows[-1]), flush=True)
                bad = [(p, outcome, how[p]) for p, outcome in results.items() if outcome[0] in BAD]
                if bad:
                    failures[f"{model}/{seed}/{interpreter}/{'raw' if raw else 'checked'}"] = bad[:5]
                refusals.update(
                    re.sub(r"\b\d+\b", "N", message.split(": ", 1)[-1])[:100]
                    for kind, message in results.values()
                    if kind == "CHECK"
                )
    return {"rows": rows, "failures": failures, "refusals": refusals.most_common(12)}


def markdown(result: dict, options: argparse.Namespace) -> str:
    lines = [
        "# Mutated models against real interpreters",
        "",
        f"Run on {time.strftime('%Y-%m-%d')}: {options.mutants} mutants per model and seed (seeds "
        f"{', '.join(map(str, options.seeds))}), each loaded, allocated and invoked on zeros in a worker process "
        "(`python -m benchmarks.model_fuzzing`). `check`: edge_runtime's checks in front (`backends.read_model_bytes`,"
        " then `load_interpreter` and `invoke`); without it, the interpreter alone. Outcomes: RAN (the mutant loaded "
        "and ran), CHECK (edge_runtime refused it in one line before any interpreter saw it), INTERPRETER (the "
        "interpreter refused it, one ModelError line with the check in front), CRASH (the worker died of a signal), "
        "HANG (no answer in 120 s), TRACEBACK (an exception that is not one line).",
        "",
        "| model | seed | interpreter | check | mutants | " + " | ".join(OUTCOMES) + " | seconds |",
        "|---|---|---|---|---|" + "---|" * len(OUTCOMES) + "---|",
    ]
    for row in result["rows"]:
        cells = [row["model"], row["seed"], row["interpreter"], "yes" if row["check"] else "no", row["mutants"]]
        lines.append("| " + " | ".join(map(str, [*cells, *(row[k] for k in OUTCOMES), row["seconds"]])) + " |")
    totals = Counter()
    for row in result["rows"]:
        for kind in OUTCOMES:
            totals[(row["interpreter"], row["check"], kind)] += row[kind]
    lines += ["", "Totals:", ""]
    for interpreter in dict.fromkeys(row["interpreter"] for row in result["rows"]):
        for check in (True, False):
            counted = {k: totals[(interpreter, check, k)] for k in OUTCOMES}
            if sum(counted.values()):
                text = ", ".join(f"{k} {v}" for k, v in counted.items())
                lines.append(f"- {interpreter}, {'with' if check else 'without'} the check: {text}")
    lines += ["", "Most common refusals by the check (numbers as N):", ""]
    lines += [f"- {count} x `{message}`" for message, count in result["refusals"]]
    if result["failures"]:
        lines += ["", "Crashes, hangs and tracebacks (first five of each run):", ""]
        for run_name, bad in result["failures"].items():
            lines += [
                f"- {run_name}: " + "; ".join(f"{Path(p).name} {o[0]} {o[1]} ({', '.join(d)})" for p, o, d in bad)
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of a .tflite file")
    parser.add_argument("--python", action="append", required=True, help="NAME=PATH of an interpreter's python")
    parser.add_argument("--mutants", type=int, default=1000)
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[1, 2, 3])
    parser.add_argument("--raw", action="store_true", help="also run every mutant with no check in front")
    parser.add_argument("--work", type=Path, default=Path("/tmp/model-fuzzing"))
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose edge_runtime checks (default: this)")
    parser.add_argument("--output", default="model_fuzzing", help="results/<output>.{json,md}")
    options = parser.parse_args(argv)
    models = {name: Path(path) for name, _, path in (m.partition("=") for m in options.model)}
    pythons = {name: path for name, _, path in (p.partition("=") for p in options.python)}
    result = campaign(models, pythons, options.work, options)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{options.output}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RESULTS / f"{options.output}.md").write_text(markdown(result, options))
    failed = sum(row[k] for row in result["rows"] if row["check"] for k in BAD)
    print(f"{failed} crashes, hangs or tracebacks behind the check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Mutated models never crash an interpreter through edge_runtime: the structural check refuses them first.

350 copies of the shipped int8 model, each with one to three mutations of its FlatBuffer structure (not
of its weights, which only change answers): 32-bit fields set to boundary values, bits flipped, bytes
replaced, truncation. Before the check, tflite-runtime 2.14 died with SIGSEGV on 83 of them. A worker
process loads each through edge_runtime.Predictor and predicts; a crash ends the worker, which is noted
and restarted after the crasher, so every mutant is tried. Both interpreters, the same 350 files.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCE = ROOT / "models" / "fashion-mnist-cnn" / "model_int8.tflite"
MUTANTS = 350
WORKER = """
import sys
import numpy as np
from edge_runtime import Predictor
from edge_runtime.errors import EdgeRuntimeError
for path in sys.argv[1:]:
    print("START", path, flush=True)
    try:
        predictor = Predictor(path, threads=1)
        predictor.predict(np.zeros((28, 28), np.uint8))
        print("RAN", flush=True)
    except EdgeRuntimeError as error:
        print("REFUSED", str(error).splitlines()[0][:200], flush=True)
"""


def _weights(content: bytes) -> list[tuple[int, int]]:
    """Byte ranges of buffer data (the weights), which mutations avoid."""
    from edge_runtime.tflite.requirements import root

    spans = []
    for buffer in root(content).tables(4, "buffer"):
        found = buffer.vector(0, 1, "data")
        if found is not None:
            spans.append((found[0], found[0] + found[1]))
    return spans


def mutate(content: bytes, rng: random.Random, weights: list[tuple[int, int]]) -> bytes:
    data = bytearray(content)

    def structural() -> int:
        while True:
            at = rng.randrange(8, len(data) - 4)
            if not any(start <= at < end for start, end in weights):
                return at

    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.4:
            values = [0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, rng.randrange(1 << 32)]
            struct.pack_into("<I", data, structural() & ~3, rng.choice(values))
        elif kind < 0.8:
            data[structural()] ^= 1 << rng.randrange(8)
        elif kind < 0.9:
            data[structural()] = rng.randrange(256)
        else:
            return bytes(data[: rng.randrange(8, len(data))])
    return bytes(data)


@pytest.fixture(scope="module")
def mutants(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("mutants")
    content = SOURCE.read_bytes()
    weights, rng, paths = _weights(content), random.Random(21), []
    for index in range(MUTANTS):
        path = folder / f"mutant-{index:03d}.tflite"
        path.write_bytes(mutate(content, rng, weights))
        paths.append(path)
    return paths


def fuzz(python: Path | str, paths: list[Path]) -> tuple[list[str], dict[str, int]]:
    """(files that crashed the worker, outcome counts), restarting the worker after each crash."""
    crashed, outcomes, start = [], {"RAN": 0, "REFUSED": 0}, 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while start < len(paths):
        done = subprocess.run(
            [str(python), "-c", WORKER, *map(str, paths[start:])],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        lines = done.stdout.splitlines()
        for line in lines:
            kind = line.split(" ", 1)[0]
            if kind in outcomes:
                outcomes[kind] += 1
        started = [line.split(" ", 1)[1] for line in lines if line.startswith("START ")]
        if done.returncode == 0:
            break
        assert done.returncode < 0 and started, done.stderr[-2000:]  # only a signal ends the worker early
        crashed.append(started[-1])
        start = [str(p) for p in paths].index(started[-1]) + 1
    return crashed, outcomes


def _check(python: Path | str, mutants: list[Path]) -> None:
    crashed, outcomes = fuzz(python, mutants)
    assert crashed == [], f"{len(crashed)} of {len(mutants)} mutated models crashed: {crashed[:5]}"
    assert outcomes["RAN"] + outcomes["REFUSED"] == MUTANTS
    assert outcomes["REFUSED"] > MUTANTS // 3  # the check refuses, in one line, what could crash


def test_mutated_models_never_crash_ai_edge_litert(mutants: list[Path]) -> None:
    import sys

    _check(sys.executable, mutants)


@pytest.mark.slow
def test_mutated_models_never_crash_tflite_runtime_2_14(
    mutants: list[Path], device_python: Callable[[str], Path]
) -> None:
    _check(device_python("tflite-runtime-numpy1"), mutants)

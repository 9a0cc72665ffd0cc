"""Every option that sizes work on the device side is refused past its documented maximum (issue #28).

From the command line: exit 2 and one line naming the option and the maximum. From Python: UsageError naming
the argument, for a value too large and for a value of the wrong type (a string, a bool, a float), before any
thread, interpreter or buffer is made. The unbounded values are never tried: only their refusal is. SIGTERM
stops a long `bench` (exit 130, one line) and a stream (its summary, exit 0) in a real process.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_runtime import Predictor, UsageError
from edge_runtime.backends import load_interpreter
from edge_runtime.bench import benchmark, time_invokes
from edge_runtime.cli import main as runtime_main
from edge_runtime.device import scores
from edge_runtime.limits import MAX_EVERY, MAX_FRAME_KB, MAX_RUNS, MAX_SCORE_IMAGES, MAX_WARMUP, max_threads
from edge_runtime.stream.bench import measure
from edge_runtime.stream.frames import FrameSplitter, frames_of
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
RUNTIME = [sys.executable, "-m", "edge_runtime"]
SAMPLE = SHIPPED / "samples" / "bag.jpg"
CLI_LIMITS = [
    (["predict", str(SHIPPED), str(SAMPLE), "--threads", "100000"], "--threads", max_threads()),
    (["bench", str(SHIPPED), "--threads", "100000"], "--threads", max_threads()),
    (["info", str(SHIPPED), "--threads", str(max_threads() + 1)], "--threads", max_threads()),
    (["bench", str(SHIPPED), "--runs", "1000000000"], "--runs", MAX_RUNS),
    (["bench", str(SHIPPED), "--warmup", "1000000000"], "--warmup", MAX_WARMUP),
    (["bench", str(SHIPPED), "--stream", str(SAMPLE), "--threads", "100000"], "--threads", max_threads()),
    (["predict", str(SHIPPED), "-", "--every", str(MAX_EVERY + 1)], "--every", MAX_EVERY),
    (["predict", str(SHIPPED), "-", "--max-frame-kb", "1000000"], "--max-frame-kb", MAX_FRAME_KB),
    (["scores", str(SHIPPED), "x.npy", "--threads", "100000"], "--threads", max_threads()),
    (["bench", str(SHIPPED), "--runs", "1e9"], "--runs", None),
    (["bench", str(SHIPPED), "--threads", "-2"], "--threads", None),
]


@pytest.mark.parametrize(("argv", "option", "maximum"), CLI_LIMITS, ids=[" ".join(c[0][2:]) for c in CLI_LIMITS])
def test_the_cli_refuses_past_each_maximum_in_one_line(
    argv: list[str], option: str, maximum: int | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runtime_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {option}:" in err[0], err
    assert maximum is None or f"must be at most {maximum:,}" in err[0], err


def test_the_installed_command_refuses_100000_threads_before_making_any() -> None:
    done = subprocess.run([*RUNTIME, "predict", str(SHIPPED), str(SAMPLE), "--threads", "100000"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.strip().splitlines() == [
        f"edge-runtime: error: argument --threads: must be at most {max_threads():,} (64, or the cores when there "
        "are more: more threads only wait for the cores), got 100,000 (see edge-runtime predict --help)"
    ]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(SHIPPED, threads=1)


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scores") / "many.npy"
    np.save(path, np.zeros((MAX_SCORE_IMAGES + 1, 28, 28, 1), np.uint8))
    return path


PYTHON_LIMITS: list[tuple[str, Callable[..., Any], str]] = [
    ("100000 threads", lambda p, f: Predictor(SHIPPED, threads=100_000), "threads must be at most"),
    ("threads as text", lambda p, f: Predictor(SHIPPED, threads="4"), "threads must be a whole number, got '4'"),
    ("threads True", lambda p, f: Predictor(SHIPPED, threads=True), "threads must be a whole number, got True"),
    ("threads 2.0", lambda p, f: Predictor(SHIPPED, threads=2.0), "threads must be a whole number"),
    ("input_std text", lambda p, f: Predictor(SHIPPED, input_std="1"), "input_std must be a finite number"),
    ("input_mean nan", lambda p, f: Predictor(SHIPPED, input_mean=float("nan")), "input_mean must be a finite"),
    ("invert text", lambda p, f: Predictor(SHIPPED, invert="yes"), "invert must be True or False"),
    ("backend number", lambda p, f: Predictor(SHIPPED, backend=3), "backend must be a name"),
    ("labels number", lambda p, f: Predictor(SHIPPED, labels=7), "labels must be a labels file or a list"),
    ("top_k 1.5", lambda p, f: p.top_k(np.ones(10), 1.5), "top_k must be a whole number, got 1.5"),
    ("predict top_k 1.5", lambda p, f: p.predict(SAMPLE, top_k=1.5), "top_k must be a whole number"),
    ("predict_batch top_k 0", lambda p, f: p.predict_batch([SAMPLE], top_k=0), "top_k must be at least 1"),
    ("stream every", lambda p, f: p.stream(b"", every=MAX_EVERY + 1), f"every must be at most {MAX_EVERY:,}"),
    ("stream cap", lambda p, f: p.stream(b"", max_frame_bytes=1 << 40), "max_frame_bytes must be at most"),
    ("stream cap text", lambda p, f: p.stream(b"", max_frame_bytes="16M"), "max_frame_bytes must be a whole"),
    ("stream latest", lambda p, f: p.stream(b"", latest="yes"), "latest must be True or False"),
    ("stream top_k", lambda p, f: p.stream(b"", top_k=None), "top_k must be a whole number"),
    ("bench runs", lambda p, f: benchmark(f, runs=10**9), f"runs must be at most {MAX_RUNS:,}"),
    ("bench warmup", lambda p, f: benchmark(f, warmup=-1), "warmup must be at least 0"),
    ("bench warmup text", lambda p, f: benchmark(f, warmup="10"), "warmup must be a whole number"),
    ("bench threads", lambda p, f: benchmark(f, threads=100_000), "threads must be at most"),
    ("time_invokes", lambda p, f: time_invokes(p.interpreter, 10**12), "runs must be at most"),
    ("load_interpreter", lambda p, f: load_interpreter(f, threads=100_000), "threads must be at most"),
    ("splitter cap 0", lambda p, f: FrameSplitter(io.BytesIO().read, 0), "max_frame_bytes must be at least 1"),
    ("frames_of cap", lambda p, f: frames_of(b"", 1 << 40), "max_frame_bytes must be at most 67,108,864"),
    ("bench stream top_k", lambda p, f: measure(p, SAMPLE, top_k=0), "top_k must be at least 1"),
]


@pytest.mark.parametrize(("case", "call", "message"), PYTHON_LIMITS, ids=[c[0] for c in PYTHON_LIMITS])
def test_python_refuses_each_argument_past_its_bound_or_of_the_wrong_type(
    predictor: Predictor, case: str, call: Callable[..., Any], message: str
) -> None:
    with pytest.raises(UsageError) as raised:
        call(predictor, predictor.model_path)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_scores_refuses_an_array_over_the_limit_before_loading_it(many_images: Path) -> None:
    with pytest.raises(UsageError, match=f"10,001 images, over the limit of {MAX_SCORE_IMAGES:,}"):
        scores(SHIPPED, many_images)


def test_scores_reads_its_array_a_batch_at_a_time(tmp_path: Path, fashion_arrays: tuple) -> None:
    images = fashion_arrays[0][:600]
    np.save(tmp_path / "some.npy", images)
    found = scores(SHIPPED, tmp_path / "some.npy", threads=1)
    expected = Predictor(SHIPPED, threads=1).scores(images.astype(np.float32)).argmax(axis=1).tolist()
    assert found["images"] == 600 and found["top1"] == expected


def test_sigterm_stops_a_long_bench_with_one_line() -> None:
    """100,000 runs (the maximum, 12 s or more here) stopped after 4 s by SIGTERM, as a service manager would."""
    bench = subprocess.Popen([*RUNTIME, "bench", str(SHIPPED), "--runs", str(MAX_RUNS), "--warmup", "0", "--threads",
                              "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(4)
    assert bench.poll() is None, "the bench ended before it could be stopped"
    bench.send_signal(signal.SIGTERM)
    began = time.monotonic()
    out, err = bench.communicate(timeout=30)
    assert time.monotonic() - began < 10
    lines = [line for line in err.splitlines() if not line.startswith("edge-runtime: using ")]
    assert bench.returncode == 130 and lines == ["edge-runtime: interrupted"] and not out, err


def test_sigterm_ends_a_stream_with_its_summary() -> None:
    """A camera that never stops: 20 frames, then SIGTERM while the pipe is still open."""
    stream = subprocess.Popen([*RUNTIME, "predict", str(SHIPPED), "-", "--jsonl"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)  # fmt: skip
    assert stream.stdin is not None and stream.stdout is not None
    stream.stdin.write(SAMPLE.read_bytes() * 20)
    lines, began = b"", time.monotonic()
    while lines.count(b"\n") < 20 and time.monotonic() - began < 120 and stream.poll() is None:
        lines += stream.stdout.read(1 << 12) or b""
    assert lines.count(b"\n") == 20, lines
    stream.send_signal(signal.SIGTERM)
    began = time.monotonic()
    out, err = stream.communicate(timeout=30)
    assert time.monotonic() - began < 10
    assert stream.returncode == 0 and not out, err
    summary = [line for line in err.decode().splitlines() if not line.startswith("edge-runtime: using ")]
    assert len(summary) == 1 and summary[0].startswith("edge-runtime: 20 frame(s) in"), summary

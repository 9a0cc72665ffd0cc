"""`edge-runtime predict MODEL -` (frames on standard input) and `predict MODEL --watch DIR`: a line per image."""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FAILURE_EXIT_CODE, ImageError, UsageError
from ..text import printable
from .frames import StreamCounts
from .live import FrameResult, Tally, results
from .watch import RETRY_SECONDS, DirectoryWatch

PROG = "edge-runtime"


def _say(message: str) -> None:
    print(f"{PROG}: {printable(message)}", file=sys.stderr, flush=True)


def _line(result: FrameResult, name: str) -> str:
    """The table form of one frame: its name, top-k inline, and where the time went."""
    if result.error:
        return f"{name}  error: {printable(result.error)}"
    labels = "  ".join(f"{printable(c.label)} {c.score:.3f}" for c in result.top_k)
    return f"{name}  {labels}  (decode {result.decode_ms:.1f} ms, invoke {result.invoke_ms:.1f} ms)"


def _emit(result: FrameResult, args: argparse.Namespace, extra: dict[str, Any]) -> None:
    if args.jsonl or args.json:
        print(json.dumps({**extra, **result.to_dict()}, ensure_ascii=False), flush=True)
    else:
        print(_line(result, extra.get("image") or f"frame {result.frame:>6}"), flush=True)


def _stop_on_signals() -> None:
    """Ctrl-C, and a service manager's SIGTERM (edge_runtime.cli.main makes it a KeyboardInterrupt), end a
    stream or a watch with the summary and exit 0, also when started as a shell's background job, which
    inherits SIGINT ignored."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _summary(tally: Tally, args: argparse.Namespace) -> None:
    counts = tally.counts
    parts = [f"{tally.classified} classified"]
    if tally.dropped:
        parts.append(f"{tally.dropped} dropped (--latest keeps the newest)")
    if tally.passed_over:
        parts.append(f"{tally.passed_over} passed over (--every {args.every})")
    if tally.unreadable:
        parts.append(f"{tally.unreadable} unreadable")
    _say(
        f"{counts.frames} frame(s) in {tally.seconds:.2f} s, {tally.frames_per_second:.1f} frames/s: "
        f"{', '.join(parts)}; {counts.skipped_bytes:,} byte(s) skipped between frames"
    )
    if counts.oversized:
        _say(f"warning: {counts.oversized:,} frame(s) over the {args.max_frame_kb:,} KB cap were dropped "
             "(--max-frame-kb)")  # fmt: skip
    if counts.truncated:
        _say(f"warning: the stream ended inside its last frame ({counts.truncated:,} bytes): it was not classified")


def _standard_input() -> BinaryIO:
    """Standard input unbuffered: the reader thread, blocked reading when Ctrl-C or SIGTERM ends the stream, holds
    no lock that the interpreter's shutdown needs (with sys.stdin.buffer it aborted: "could not acquire lock")."""
    try:
        return io.FileIO(sys.stdin.fileno(), "rb", closefd=False)
    except (AttributeError, OSError, ValueError):  # no descriptor: a test's stand-in
        return sys.stdin.buffer


def predict_stream(args: argparse.Namespace, predictor: Any) -> int:
    """Classify the frames on standard input until it ends (exit 0), or until Ctrl-C or SIGTERM."""
    _stop_on_signals()
    tally = Tally(StreamCounts())
    answered = {"model": predictor.model_path.name, "variant": predictor.variant}
    try:
        for result in results(predictor, _standard_input(), args.top_k, args.every, args.latest,
                              args.max_frame_kb * 1024, tally):  # fmt: skip
            _emit(result, args, answered if args.jsonl or args.json else {})
            if tally.classified in (1, 10, 100, 1000) and (note := predictor.input_note()):
                _say(f"note: {note}")
    except KeyboardInterrupt:
        _summary(tally, args)
        return 0
    counts = tally.counts
    if counts.frames == 0:  # one line: what was there instead
        found = [f"{counts.false_starts:,} frame start(s) not followed by a frame"] if counts.false_starts else []
        found += [f"{counts.oversized:,} over the {args.max_frame_kb:,} KB cap"] if counts.oversized else []
        found += [f"one cut short at the end ({counts.truncated:,} bytes)"] if counts.truncated else []
        _say(f"error: no JPEG or PNG frames in the {counts.bytes_read:,} byte(s) read from standard input"
             + (f" ({'; '.join(found)})" if found else ""))  # fmt: skip
        return FAILURE_EXIT_CODE
    _summary(tally, args)
    return 0


def _classify_file(predictor: Any, path: Path, index: int, top_k: int) -> FrameResult:
    result = FrameResult(index, path.suffix.lstrip(".").lower(), 0)
    start = time.perf_counter()
    try:
        result.bytes = path.stat().st_size
        pixels = predictor.preprocess(path)
        decoded = time.perf_counter()
        result.top_k = predictor.top_k(predictor.scores(pixels[None])[0], top_k)
        result.decode_ms, result.invoke_ms = (decoded - start) * 1000, (time.perf_counter() - decoded) * 1000
    except (ImageError, OSError) as error:
        result.error = str(error)
    return result


def _recent(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < RETRY_SECONDS
    except OSError:
        return False


def predict_watch(args: argparse.Namespace, predictor: Any) -> int:
    """Classify each image written into the directory, once complete, until Ctrl-C or SIGTERM (exit 0)."""
    directory = Path(args.watch)
    if not directory.is_dir():
        raise UsageError(f"--watch {directory}: no such directory")
    _stop_on_signals()
    watch = DirectoryWatch(directory)
    _say(f"watching {directory} for new images (Ctrl-C stops)")
    seen = failed = 0
    began = time.perf_counter()
    try:
        for path in watch:
            result = _classify_file(predictor, path, seen + 1, args.top_k)
            if result.error and _recent(path):
                watch.retry(path)  # probably still being written: again when it changes, or once it is old
                continue
            seen, failed = seen + 1, failed + (result.error is not None)
            _emit(result, args, {"image": str(path)})
            if seen in (1, 10, 100) and (note := predictor.input_note()):
                _say(f"note: {note}")
    except KeyboardInterrupt:
        pass
    _say(f"{seen} image(s) in {time.perf_counter() - began:.1f} s: {seen - failed} classified, {failed} unreadable")
    return 0

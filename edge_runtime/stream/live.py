"""Classify a stream of frames: one result per frame, from a recorded file or a live camera.

A reader thread splits the stream (edge_runtime.stream.frames) while the model classifies. From a recorded file
every frame is classified, the reader held back by a queue of QUEUE_FRAMES frames (memory stays bounded);
from a live camera (`latest=True`) the reader keeps only the newest frame, so a slow model classifies the
present instead of falling behind, and the frames it never saw are counted as dropped. `every=N` classifies
one frame in N. Frames are decoded for the model's size: a JPEG at 1/2, 1/4 or 1/8 scale directly.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImageError
from ..images import decode_image, load_image, prepare_pixels, to_eight_bit
from ..limits import MAX_EVERY, flag, whole_number
from .frames import MAX_FRAME_BYTES, Frame, StreamCounts, frames_of

QUEUE_FRAMES = 4
_END = object()


@dataclass
class FrameResult:
    """One classified frame (or why it could not be): top-k, and the milliseconds spent on each part."""

    frame: int
    kind: str
    bytes: int
    top_k: list[Any] = field(default_factory=list)
    decode_ms: float = 0.0  # decode, colour conversion and resize
    invoke_ms: float = 0.0  # the interpreter's invoke, with its input and output tensors
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"frame": self.frame, "kind": self.kind, "bytes": self.bytes, "decode_ms": round(self.decode_ms, 3),
                "invoke_ms": round(self.invoke_ms, 3)}  # fmt: skip
        return {**data, "error": self.error} if self.error else {**data, "top_k": [c.to_dict() for c in self.top_k]}


@dataclass
class Tally:
    """A stream's numbers for the summary line."""

    counts: StreamCounts
    classified: int = 0
    unreadable: int = 0
    dropped: int = 0  # --latest: frames replaced by a newer one before the model got to them
    passed_over: int = 0  # --every N
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.classified / self.seconds if self.seconds > 0 else 0.0


def classify(predictor: Any, frame: Frame, top_k: int) -> FrameResult:
    """Decode one frame at the model's size, feed it, and time both."""
    result = FrameResult(frame.index, frame.kind, len(frame.data))
    spec = predictor.spec
    began = time.perf_counter()
    try:
        if frame.image is not None:
            image = load_image(frame.image, spec, predictor.decode_mode)
        else:
            where, size = f"frame {frame.index}", (spec.width, spec.height)
            image = decode_image(io.BytesIO(frame.data), where, size, predictor.decode_mode)
        image = to_eight_bit(image)
        pixels = prepare_pixels(image, spec)
    except ImageError as error:
        result.error, result.decode_ms = str(error), (time.perf_counter() - began) * 1000
        return result
    if predictor.input_watch is not None:
        predictor.input_watch.see(image, pixels)
    decoded = time.perf_counter()
    scores = predictor.scores(pixels[None])[0]
    result.decode_ms, result.invoke_ms = (decoded - began) * 1000, (time.perf_counter() - decoded) * 1000
    result.top_k = predictor.top_k(scores, top_k)
    return result


class _Newest:
    """A one-frame mailbox: a new frame replaces one not yet taken (which counts as dropped)."""

    def __init__(self, tally: Tally) -> None:
        self._tally, self._item, self._closed, self._ready = tally, None, False, threading.Condition()

    def put(self, item: Any, stop: threading.Event) -> None:
        with self._ready:
            if item is _END:
                self._closed = True  # the frame still waiting, the newest, is still taken
            else:
                self._tally.dropped += self._item is not None
                self._item = item
            self._ready.notify()

    def get(self) -> Any:
        with self._ready:
            while self._item is None and not self._closed:
                self._ready.wait()
            item, self._item = self._item, None
            return _END if item is None else item


class _Queue:
    """Every frame, in order, at most QUEUE_FRAMES of them waiting: the reader waits for the model."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)

    def put(self, item: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        return self._queue.get()


def _feed(frames: Iterator[Frame], mailbox: Any, every: int, tally: Tally, failure: list[BaseException],
          stop: threading.Event) -> None:  # fmt: skip
    try:
        for frame in frames:
            if stop.is_set():
                return
            if (frame.index - 1) % every:
                tally.passed_over += 1
                continue
            mailbox.put(frame, stop)
    except BaseException as error:  # noqa: BLE001 - handed to the consuming thread, which raises it
        failure.append(error)
    finally:
        mailbox.put(_END, stop)


def results(
    predictor: Any,
    source: Any,
    top_k: int = 5,
    every: int = 1,
    latest: bool = False,
    max_frame_bytes: int = MAX_FRAME_BYTES,
    tally: Tally | None = None,
) -> Iterator[FrameResult]:
    """One FrameResult per classified frame of `source`, as they come; `tally` (when given) fills as it goes."""
    top_k, every = whole_number(top_k, "top_k", 1), whole_number(every, "every", 1, MAX_EVERY)
    latest = flag(latest, "latest")
    frames, counts = frames_of(source, max_frame_bytes)
    tally = tally if tally is not None else Tally(counts)
    tally.counts = counts
    mailbox: Any = _Newest(tally) if latest else _Queue()
    failure: list[BaseException] = []
    stop = threading.Event()
    reader = threading.Thread(target=_feed, args=(frames, mailbox, every, tally, failure, stop), daemon=True)
    began = time.perf_counter()
    reader.start()
    try:
        while (frame := mailbox.get()) is not _END:
            result = classify(predictor, frame, top_k)
            tally.classified += result.error is None
            tally.unreadable += result.error is not None
            tally.seconds = time.perf_counter() - began
            yield result
    finally:
        stop.set()  # a consumer that stops early lets the reader go
        tally.seconds = time.perf_counter() - began
    if failure:
        raise failure[0]

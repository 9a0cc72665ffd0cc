"""`edge-runtime` / `python -m edge_runtime`: predict, evaluate, bench and info, with argparse only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__, device
from . import evaluate as evaluating
from .backends import AUTO, get_backend
from .bench import benchmark
from .choices import BackendName
from .errors import FAILURE_EXIT_CODE, USAGE_EXIT_CODE, EdgeRuntimeError, ImageError, UsageError
from .folder.selection import resolve_model
from .images import collect_images
from .limits import MAX_EVERY, MAX_FRAME_KB, MAX_RUNS, MAX_WARMUP, max_threads
from .normalization import Values, parse_values
from .predictor import Predictor
from .stream import bench as stream_bench
from .stream import cli as stream_cli
from .stream.frames import MAX_FRAME_BYTES
from .text import printable

PROG = "edge-runtime"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit code 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT_CODE, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int, maximum: Callable[[], int] | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from `minimum` to `maximum()` (docs/errors.md, "Limits")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum():
            raise argparse.ArgumentTypeError(f"must be at most {maximum():,} ({why}), got {value:,}")
        return value

    return parse


_positive_int = _int_at_least(1)
_threads = _int_at_least(1, max_threads, "64, or the cores when there are more: more threads only wait for the cores")
_runs = _int_at_least(1, lambda: MAX_RUNS, "split a longer measurement into several runs")
_warmup = _int_at_least(0, lambda: MAX_WARMUP, "an interpreter is warm after a few invokes")
_every = _int_at_least(1, lambda: MAX_EVERY, "9 hours of a 30 fps camera")
_frame_kb = _int_at_least(1, lambda: MAX_FRAME_KB, "64 MB: the stream reader holds a few frames at once")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=_threads, default=None, help="interpreter threads (default: the runtime's choice)"
    )
    parser.add_argument(
        "--backend",
        choices=BackendName.values(),
        default=AUTO,
        help="interpreter to use (default: first installed of %(choices)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")


def _stream_options(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("--jsonl", action="store_true", help="one JSON object a line, flushed as each is done")
    predict.add_argument(
        "--watch", type=Path, default=None, metavar="DIR", help="classify images as they are written into DIR"
    )
    predict.add_argument(
        "--latest", action="store_true", help="stream: keep only the newest frame when frames come faster (a camera)"
    )
    predict.add_argument("--every", type=_every, default=1, metavar="N", help="stream: classify one frame in N")
    predict.add_argument(
        "--max-frame-kb", type=_frame_kb, default=MAX_FRAME_BYTES >> 10, metavar="KB",
        help="stream: frames larger than this are dropped (default: %(default)s)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Run TFLite image classifiers on a device: numpy, pillow and a TFLite interpreter only."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="{predict,evaluate,bench,info,device-facts,scores}", parser_class=_Parser
    )
    commands.required = True

    predict = commands.add_parser("predict", help="classify images or folders of images")
    predict.add_argument("model", type=Path, help=".tflite file or model folder")
    predict.add_argument(
        "images", type=Path, nargs="*", help="image files or folders; - reads a stream of JPEG/PNG frames from stdin"
    )
    predict.add_argument(
        "--labels", type=Path, default=None, help="labels file, one label a line (default: the model folder's)"
    )
    predict.add_argument(
        "--top-k", type=_positive_int, default=5, help="how many classes to show (default: %(default)s)"
    )
    predict.add_argument(
        "--input-mean", type=_mean, default=None, metavar="M[,M,M]",
        help="for models without metadata: input = (pixel - mean) / std, one value or one per channel (R,G,B); a "
        "float input without metadata needs it: 0 and 255 for [0, 1], 127.5 and 127.5 for [-1, 1], 0 and 1 for 0..255",
    )  # fmt: skip
    predict.add_argument("--input-std", type=_std, default=None, metavar="S[,S,S]", help="see --input-mean")
    predict.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="invert colours before the model (default: as metadata says)",
    )
    _stream_options(predict)
    _common(predict)
    evaluating.add_parser(commands, _common)

    bench = commands.add_parser("bench", help="time invoke() with warm-up")
    bench.add_argument("model", type=Path, help=".tflite file or model folder")
    bench.add_argument("--warmup", type=_warmup, default=10, help="untimed runs first (default: %(default)s)")
    bench.add_argument("--runs", type=_runs, default=100, help="timed runs (default: %(default)s)")
    bench.add_argument(
        "--stream", type=Path, default=None, metavar="FILE",
        help="instead: classify a Motion JPEG (or PNG) stream file end to end; frames/s and the time beyond invoke()",
    )  # fmt: skip
    _common(bench)

    info = commands.add_parser("info", help="inputs, outputs, quantization, ops and metadata of a model")
    info.add_argument("model", type=Path, help=".tflite file or model folder")
    _common(info)

    _device_commands(commands)
    return parser


def _device_commands(commands: Any) -> None:
    """What `edge-pipeline benchmark/evaluate --on HOST` asks a device; JSON on stdout."""
    facts = commands.add_parser("device-facts", help="this device's CPU, board, OS, Python and interpreter (JSON)")
    facts.add_argument("--debug", action="store_true", help="show a traceback on errors")
    scores = commands.add_parser("scores", help="class scores for a .npy array of preprocessed images (JSON)")
    scores.add_argument("model", type=Path, help=".tflite file or model folder")
    scores.add_argument("images", type=Path, help=".npy array (N, height, width, channels) of model input")
    _common(scores)


def _mean(text: str) -> Values:
    return _argument(text, "--input-mean", positive=False)


def _std(text: str) -> Values:
    return _argument(text, "--input-std", positive=True)


def _argument(text: str, name: str, positive: bool) -> Values:
    """One value or three (R,G,B); argparse names the option before the reason."""
    try:
        return parse_values(text, name, positive)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"{name} ")) from None


def _predict(args: argparse.Namespace) -> int:
    streaming = [str(p) for p in args.images] == ["-"]
    if not args.images and args.watch is None:
        raise UsageError("predict needs images, folders, - (frames on standard input) or --watch DIR")
    if (args.watch is not None and args.images) or ("-" in map(str, args.images) and not streaming):
        raise UsageError("predict takes images and folders, or - alone, or --watch DIR alone")
    predictor = Predictor(
        args.model,
        labels=args.labels,
        threads=args.threads,
        backend=args.backend,
        input_mean=args.input_mean,
        input_std=args.input_std,
        invert=args.invert,
    )
    _say_choice(predictor.choice_note)
    for assumption in [*predictor.warnings, *predictor.assumptions]:
        print(f"{PROG}: warning: {printable(assumption)}", file=sys.stderr)
    if streaming:
        return stream_cli.predict_stream(args, predictor)
    if args.watch is not None:
        return stream_cli.predict_watch(args, predictor)
    files, problems = collect_images(args.images)
    good: list[Path] = []
    pixels: list[np.ndarray] = []
    failed: list[dict[str, Any]] = []
    for path in files:
        try:
            pixels.append(predictor.preprocess(path))
            good.append(path)
        except ImageError as error:
            problems.append(str(error))
            failed.append({"image": str(path), "error": str(error)})
    note = predictor.input_note()
    if note:
        print(f"{PROG}: note: {printable(note)}", file=sys.stderr)
    answered = {"model": predictor.model_path.name, "variant": predictor.variant, "backend": predictor.backend.label}
    results = []
    if pixels:
        for path, scores in zip(good, predictor.scores(np.stack(pixels)), strict=True):
            results.append(
                {"image": str(path), "top_k": [c.to_dict() for c in predictor.top_k(scores, args.top_k)], **answered}
            )
    if args.json:
        order = {str(path): index for index, path in enumerate(files)}
        print(json.dumps(sorted(results + failed, key=lambda r: order.get(r["image"], -1)), indent=2))
    elif results:
        _print_predictions(results)
    for problem in problems:
        print(f"{PROG}: error: {printable(problem)}", file=sys.stderr)
    if problems:
        print(f"{PROG}: {len(problems)} of {len(problems) + len(results)} inputs failed", file=sys.stderr)
        return FAILURE_EXIT_CODE
    return 0


def _print_predictions(results: list[dict[str, Any]]) -> None:
    """The table form: image paths and labels with control characters escaped (JSON keeps them exact)."""
    image_width = max(len("image"), *(len(printable(r["image"])) for r in results))
    label_width = max(len("label"), *(len(printable(c["label"])) for r in results for c in r["top_k"]))
    print(f"{'image':<{image_width}}  {'label':<{label_width}}  {'index':>5}  {'score':>6}")
    for result in results:
        for rank, choice in enumerate(result["top_k"]):
            name = printable(result["image"]) if rank == 0 else ""
            print(
                f"{name:<{image_width}}  {printable(choice['label']):<{label_width}}  {choice['index']:>5}  "
                f"{choice['score']:>6.3f}"
            )


def _say_choice(note: str | None) -> None:
    """Which variant of a folder runs, and why, in one stderr line (stdout stays the results)."""
    if note:
        print(f"{PROG}: {printable(note)}", file=sys.stderr)


def _bench(args: argparse.Namespace) -> int:
    if args.stream is not None:
        return stream_bench.run(args)
    choice = resolve_model(args.model, get_backend(args.backend))
    _say_choice(choice.note)
    model = choice.path
    result = benchmark(model, threads=args.threads, warmup=args.warmup, runs=args.runs, backend=args.backend)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    lat = result.latency
    memory = f"{result.peak_memory_mb:.1f} MB" if result.peak_memory_mb is not None else "n/a"
    print(f"model        {printable(result.model)} ({result.bytes / 1024:.1f} KB)")
    print(
        f"backend      {result.backend}, threads {result.threads or 'default'}, warm-up {result.warmup}, runs "
        f"{lat.runs}"
    )
    print(f"load         {result.load_ms:.1f} ms")
    print(
        f"latency ms   mean {lat.mean_ms:.3f}  p50 {lat.p50_ms:.3f}  p90 {lat.p90_ms:.3f}  p99 {lat.p99_ms:.3f}  min "
        f"{lat.min_ms:.3f}  max {lat.max_ms:.3f}"
    )
    print(f"throughput   {lat.images_per_second:.1f} invokes/s")
    print(f"peak memory  {memory}")
    return 0


def _info(args: argparse.Namespace) -> int:
    description = Predictor(args.model, threads=args.threads, backend=args.backend).describe()
    if args.json:
        print(json.dumps(description, indent=2))
        return 0
    lines = [f"model     {description['model']} ({description['bytes'] / 1024:.1f} KB), {description['backend']}"]
    for kind in ("inputs", "outputs"):
        for tensor in description[kind]:
            quant = tensor["quantization"]
            q = f"scale {quant['scale']:.6g}, zero point {quant['zero_point']}" if quant else "not quantized"
            lines.append(f"{kind[:-1]:<9} {tensor['name']}: {tensor['dtype']} {tensor['shape']} ({q})")
    ops = ", ".join(f"{name} x{count}" for name, count in description["op_types"].items())
    lines.append(f"ops       {description['ops']}: {ops}")
    needs = description["requirements"]
    versions = ", ".join(f"{name} v{version}" for name, version in needs["ops"].items())
    lines.append(
        f"runtime   needs {needs['min_runtime'] or 'unknown'} ({versions}); {description['backend']} "
        f"implements {description['runtime']}"
    )
    spec = description["input_spec"]
    lines.append(
        f"images    {spec['width']}x{spec['height']} {spec['color']}, invert {spec['invert']}, input = (pixel - "
        f"{spec['mean']:g}) / {spec['std']:g}"
    )
    lines.append(f"labels    {description['labels']}")
    metadata = description["metadata"]
    if metadata:
        training = metadata.get("training", {})
        accuracy = training.get("test_accuracy")
        lines.append(
            f"metadata  {metadata.get('name')}: {training.get('model')} on {metadata.get('dataset', {}).get('name')}"
            + (f", Keras test accuracy {accuracy:.2%}" if isinstance(accuracy, float) else "")
        )
    embedded = description["embedded_metadata"]
    if embedded and embedded.get("name") is not None:
        inside = f"{embedded['labels']} labels in {embedded['label_file']}" if embedded["labels"] else "no labels"
        lines.append(
            f"inside    TFLite metadata: {embedded['name']} {embedded['version'] or ''} by {embedded['author']}; "
            f"{embedded['color']} input, mean {embedded['mean']} std {embedded['std']}; {inside}"
        )
    for line in lines:
        print(printable(line))  # names, labels and paths come from the file: never raw to the terminal
    return 0


def _facts(args: argparse.Namespace) -> int:
    print(json.dumps(device.facts(), indent=2))
    return 0


def _scores(args: argparse.Namespace) -> int:
    print(json.dumps(device.scores(args.model, args.images, args.threads)))
    return 0


@contextlib.contextmanager
def _terminate_interrupts() -> Iterator[None]:
    """SIGTERM (a service manager's stop, `kill`, `timeout`) interrupts a run as Ctrl-C does: `bench` and a
    folder's predictions stop with one line and exit 130; a stream or a watch ends with its summary. The
    previous handler comes back afterwards (main() may run inside another program)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (argparse's own exits included)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:  # usage errors (2), --help and --version (0)
        return exit_request.code if isinstance(exit_request.code, int) else FAILURE_EXIT_CODE
    with _terminate_interrupts():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    handlers = {"predict": _predict, "evaluate": evaluating.run, "bench": _bench, "info": _info, "device-facts": _facts,
                "scores": _scores}  # fmt: skip
    try:
        return handlers[args.command](args)
    except EdgeRuntimeError as error:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {printable(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `predict ... | head -2`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as error:  # noqa: BLE001 - the promise is one line, never a traceback
        if args.debug:
            traceback.print_exc()
        print(
            f"{PROG}: error: unexpected {type(error).__name__}: {printable(error)} (run with --debug for details)",
            file=sys.stderr,
        )
        return FAILURE_EXIT_CODE

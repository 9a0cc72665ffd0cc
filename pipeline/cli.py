"""`edge-pipeline`: a thin Typer layer that parses options, calls a stage, and prints.

Options are declared once in OPTIONS; each command names the ones it takes, so `train` and
`run` (which takes every stage's options) cannot drift apart.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from edge_runtime.backends import native_stderr_captured
from edge_runtime.errors import EdgeRuntimeError

from .errors import GateFailed, Interrupted, PipelineError, UsageError, cause

PROG = "edge-pipeline"
app = typer.Typer(
    name=PROG,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Train an image classifier, convert it to TFLite in every precision, check accuracy drift, benchmark and "
    "report.",
)
console = Console()
if not console.is_terminal and not os.environ.get("COLUMNS"):
    console.width = 160  # logs and pipes: rich would squeeze the tables into 80 columns
error_console = Console(stderr=True)


@dataclass(frozen=True)
class Opt:
    """One command-line option: its type, default and help, shared by every command using it."""

    type: Any
    default: Any
    help: str
    flags: tuple[str, ...] = ()
    argument: bool = False

    def parameter(self, name: str) -> inspect.Parameter:
        info = (
            typer.Argument(help=self.help, metavar=name.upper())
            if self.argument
            else typer.Option(*self.flags, help=self.help)
        )
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=self.default, annotation=Annotated[self.type, info]
        )


HELP_PRECISION = "float32, float16, dynamic or int8; repeat for several (default: all)"
OPTIONS: dict[str, Opt] = {
    "model_dir": Opt(Path, ..., "model folder (models/<name>)", argument=True),
    # data
    "dataset": Opt(str, "fashion-mnist", "named dataset: fashion-mnist, mnist or cifar10"),
    "data": Opt(Path | None, None, "folder of images with one sub-folder per class, instead of --dataset"),
    "data_moved": Opt(
        Path | None, None, "where the image folder the model was trained on is now, if it moved", ("--data",)
    ),
    "data_dir": Opt(Path | None, None, "where to look first for a named dataset's files"),
    "validation_split": Opt(float, 0.1, "share of the training images held out for validation"),
    "test_split": Opt(float, 0.1, "share of an image folder held out for testing"),
    "limit": Opt(int | None, None, "use at most this many training images (quick runs)"),
    "download": Opt(
        bool, True, "let Keras download a named dataset that is not on disk", ("--download/--no-download",)
    ),
    # model
    "model": Opt(str, "cnn", "cnn, mobilenet_v2, mlp or vgg16"),
    "alpha": Opt(float, 1.0, "MobileNetV2 width multiplier: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4"),
    "input_size": Opt(int | None, None, "square input size in pixels (default: the dataset's, 96 for mobilenet_v2)"),
    "weights": Opt(str, "imagenet", "backbone weights: imagenet, none, or a local .h5/.weights.h5 file"),
    "fine_tune": Opt(int, 0, "after training the head, unfreeze this many top layers of a pretrained backbone"),
    "fine_tune_epochs": Opt(int, 5, "epochs of the fine-tuning phase"),
    "dropout": Opt(float, 0.2, "dropout before the classifier of transfer models"),
    # training
    "epochs": Opt(int, 12, "maximum epochs (early stopping on validation loss keeps the best)"),
    "batch_size": Opt(
        int | None,
        None,
        "images per training step (default: 128, smaller when an epoch would have fewer than 20 steps)",
    ),
    "learning_rate": Opt(float | None, None, "initial learning rate, cosine-decayed (default: the model's)"),
    "seed": Opt(int, 42, "seed for splits, shuffling and initial weights"),
    "patience": Opt(int, 4, "epochs without a better validation loss before stopping"),
    "label_smoothing": Opt(
        float, 0.1, "label smoothing of the loss (bounds the logits, which int8 then resolves finely)"
    ),
    "augment": Opt(bool, False, "random rotation, shift, shear and zoom while training", ("--augment/--no-augment",)),
    "flip": Opt(
        bool,
        False,
        "random horizontal flips while training (clothing, objects; never digits or text)",
        ("--flip/--no-flip",),
    ),
    "invert": Opt(
        bool,
        False,
        "invert colours (255 - x) before the model, in training and on the device",
        ("--invert/--no-invert",),
    ),
    "tensorboard": Opt(Path | None, None, "write TensorBoard logs to this folder"),
    "output": Opt(Path | None, None, "model folder to write (default: models/<dataset>-<model>)"),
    "name": Opt(str | None, None, "model name (default: the --output folder name, else <dataset>-<model>)"),
    "overwrite": Opt(bool, False, "replace a different model already in the output folder"),
    # conversion
    "precision": Opt(list[str] | None, None, HELP_PRECISION),
    "io_type": Opt(str, "int8", "int8 model's input/output type: int8, uint8 (Edge TPU-era tools) or float32"),
    "calibration_samples": Opt(
        int | None,
        None,
        "class-balanced training images to calibrate int8 on (default: 300, or all of them when there are fewer)",
    ),
    "route": Opt(str, "auto", "conversion route: auto, saved-model or keras-litert"),
    "target_runtime": Opt(
        str | None,
        None,
        "oldest TFLite runtime every variant must run on, e.g. 2.14 for tflite-runtime "
        "(default: the newest); a precision that cannot is skipped",
    ),
    # evaluation and report
    "max_drop": Opt(
        float,
        1.0,
        "percentage points of top-1 accuracy a variant may lose against Keras (never finer than one "
        "test image); evaluate and run exit 1 if one loses more, report marks it",
    ),
    "samples": Opt(int, 24, "test images in the report's picture grid"),
    # benchmark
    "threads": Opt(str, "1,2,4", "thread counts to time, comma-separated"),
    "warmup": Opt(int, 20, "untimed invokes before timing"),
    "runs": Opt(int, 200, "timed invokes per variant and thread count"),
    "rounds": Opt(int, 10, "interleaved rounds the runs are split into"),
    "eval_threads": Opt(int | None, None, "interpreter threads for evaluation (default: all cores)", ("--threads",)),
}
DATA = ["dataset", "data", "data_dir", "validation_split", "test_split", "limit", "download"]
RELOCATE = ["data_moved", "data_dir"]
TRAIN = [
    *DATA,
    "model",
    "alpha",
    "input_size",
    "weights",
    "fine_tune",
    "fine_tune_epochs",
    "dropout",
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "patience",
    "label_smoothing",
    "augment",
    "flip",
    "invert",
    "tensorboard",
    "output",
    "name",
    "overwrite",
]
CONVERT = ["precision", "io_type", "calibration_samples", "route", "target_runtime"]
BENCH = ["threads", "warmup", "runs", "rounds"]


def command(name: str, options: Sequence[str], help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register `impl(**values)` as a Typer command whose options come from OPTIONS."""

    def register(impl: Callable[..., None]) -> Callable[..., None]:
        parameters = [OPTIONS[option].parameter(option) for option in options]

        def handler(**values: Any) -> None:
            try:
                impl(**values)
            except KeyboardInterrupt:
                # Typer would turn this into a bare exit code; say what it means for the folder.
                stage = SESSION.stages.current if SESSION.stages and SESSION.stages.current else name
                raise Interrupted(
                    f"interrupted during {stage}; the model folder keeps the files it had before this stage "
                    f"(re-run the same command to finish)"
                ) from None

        handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        handler.__annotations__ = {p.name: p.annotation for p in parameters}
        handler.__doc__ = help_text
        handler.__name__ = impl.__name__
        app.command(name, help=help_text)(handler)
        return impl

    return register


# --- option values to stage configs -------------------------------------------------------------


def _data_config(v: dict[str, Any]) -> Any:
    from .data import DataConfig

    return DataConfig(
        dataset=v["dataset"],
        data_path=v["data"],
        data_dir=v["data_dir"],
        validation_split=v["validation_split"],
        test_split=v["test_split"],
        seed=v["seed"],
        limit=v["limit"],
        allow_download=v["download"],
    )


def _train_config(v: dict[str, Any]) -> Any:
    from .models import ModelOptions, check_options, get_spec
    from .train import HyperParams, TrainConfig, augmentation_for

    model_options = ModelOptions(
        alpha=v["alpha"],
        input_size=v["input_size"],
        weights=v["weights"],
        dropout=v["dropout"],
        fine_tune=v["fine_tune"],
    )
    check_options(get_spec(v["model"]), model_options)
    return TrainConfig(
        data=_data_config(v),
        model=v["model"],
        options=model_options,
        hparams=HyperParams(
            epochs=v["epochs"],
            batch_size=v["batch_size"],
            learning_rate=v["learning_rate"],
            patience=v["patience"],
            fine_tune_epochs=v["fine_tune_epochs"],
            seed=v["seed"],
            label_smoothing=v["label_smoothing"],
        ),
        augmentation=augmentation_for(v["augment"], v["flip"]),
        invert=v["invert"],
        output=v["output"],
        name=v["name"],
        tensorboard=v["tensorboard"],
        overwrite=v["overwrite"],
    )


def _moved(v: dict[str, Any]) -> Path | None:
    """Where the training data is now: `--data` of convert/evaluate/report, or of `run` (the folder it trains on)."""
    return v["data_moved"] if "data_moved" in v else v.get("data")


def _precisions(values: list[str] | None) -> tuple[str, ...]:
    from .bundle import PRECISIONS

    if not values:
        return PRECISIONS
    names = tuple(dict.fromkeys(p.strip() for value in values for p in value.split(",") if p.strip()))
    unknown = [p for p in names if p not in PRECISIONS]
    if unknown or not names:
        raise UsageError(
            f"unknown precision {', '.join(map(repr, unknown)) or '(none)'}; choose from {', '.join(PRECISIONS)}"
        )
    return names


def _thread_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--threads wants whole numbers separated by commas, like 1,2,4; got {text!r}") from None
    if not counts or any(c < 1 for c in counts):
        raise UsageError(f"--threads wants whole numbers of at least 1, got {text!r}")
    return tuple(dict.fromkeys(counts))


# --- stages -------------------------------------------------------------------------------------


class Stages:
    """Runs stages with progress on the console and prints each stage's table."""

    def __init__(self) -> None:
        from .console import RichReporter

        self.reporter = RichReporter(console)
        self.current = ""

    def _start(self, name: str, needs_tensorflow: bool = True) -> None:
        self.current = name
        console.rule(f"[bold]{name}")
        if needs_tensorflow:
            import_tensorflow_quietly()

    def train(self, v: dict[str, Any]) -> Path:
        from .console import train_summary
        from .evaluate import near_chance
        from .train import train

        config = _train_config(v)
        self._start("train")
        result = train(config, self.reporter)
        console.print(train_summary(result))
        if near_chance(result.test_accuracy, result.classes):
            console.print(
                f"[bold red]warning: the model is near chance level ({result.test_accuracy:.2%} on {result.classes} "
                f"classes, batch {result.batch_size}): it did not learn; do not ship it[/bold red]",
                highlight=False,
            )
        return result.folder

    def convert(self, folder: Path, v: dict[str, Any]) -> None:
        from .console import convert_table
        from .convert import ConvertConfig, convert

        config = ConvertConfig(
            folder=folder,
            precisions=_precisions(v["precision"]),
            io_type=v["io_type"],
            calibration_samples=v["calibration_samples"],
            route=v["route"],
            data_path=_moved(v),
            data_dir=v["data_dir"],
            target_runtime=v["target_runtime"],
        )
        self._start("convert")
        console.print(convert_table(convert(config, self.reporter)))

    def evaluate(self, folder: Path, v: dict[str, Any]) -> GateFailed | None:
        from .console import disagreement_notes, drift_table
        from .evaluate import EvaluateConfig, evaluate

        precisions = _precisions(v["precision"]) if v.get("precision") else None
        config = EvaluateConfig(
            folder=folder,
            precisions=precisions,
            max_drop=v["max_drop"],
            threads=v.get("eval_threads"),
            data_path=_moved(v),
            data_dir=v["data_dir"],
        )
        self._start("evaluate")
        result = evaluate(config, self.reporter)
        console.print(drift_table(result))
        for note in [*([result.resolution] if result.resolution else []), *disagreement_notes(result)]:
            console.print(f"[dim]{note}[/dim]", highlight=False)
        if result.failed:
            lost = ", ".join(f"{d.precision} {d.change_pp:+.2f} pp" for d in result.failed)
            finest = (
                f" ({result.allowed_drop:.2f} pp: one of the {result.test_images:,} test images is the least it can "
                "measure)"
                if result.allowed_drop > config.max_drop
                else ""
            )
            return GateFailed(
                f"accuracy gate failed: {lost} against Keras, more than --max-drop {config.max_drop:g} pp"
                f"{finest} (see {folder}/drift.json)"
            )
        count = len(result.variants)
        console.print(
            f"[green]{'the variant is' if count == 1 else f'all {count} variants are'} within "
            f"{result.allowed_drop:.4g} pp of Keras[/green]"
        )
        return None

    def benchmark(self, folder: Path, v: dict[str, Any]) -> None:
        from .benchmark import BenchmarkConfig, benchmark
        from .console import benchmark_table

        config = BenchmarkConfig(
            folder=folder, threads=_thread_counts(v["threads"]), warmup=v["warmup"], runs=v["runs"], rounds=v["rounds"]
        )
        self._start("benchmark", needs_tensorflow=False)
        console.print(benchmark_table(benchmark(config, self.reporter)))

    def report(self, folder: Path, v: dict[str, Any]) -> None:
        from .console import report_table
        from .report import ReportConfig, write_report

        config = ReportConfig(
            folder=folder, max_drop=v["max_drop"], samples=v["samples"], data_path=_moved(v), data_dir=v["data_dir"]
        )
        self._start("report")
        report = write_report(config, self.reporter)
        console.print(report_table(report))
        style = "bold" if report.recommended else "bold red"
        console.print(f"[{style}]{report.recommendation}[/{style}]", highlight=False)
        for line in report.runtime_notes:
            console.print(line, highlight=False)
        console.print(f"report: {folder / 'report.md'}", highlight=False)


@dataclass
class Session:
    """What the global options (before the command) set for this invocation."""

    debug: bool = False
    stages: Stages | None = None


SESSION = Session()


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its import-time log lines kept off the terminal.

    TensorFlow 2.21 logs INFO lines through absl before absl is initialised, when no
    threshold (TF_CPP_MIN_LOG_LEVEL included) applies yet; errors are passed on.
    """
    if SESSION.debug or "tensorflow" in sys.modules:
        return
    with native_stderr_captured() as lines:
        import tensorflow  # noqa: F401
    for line in lines:
        if line[:1] in ("E", "F") and line[1:5].isdigit():
            print(line, file=sys.stderr)


def _stages() -> Stages:
    if SESSION.stages is None:
        SESSION.stages = Stages()
    return SESSION.stages


def _version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"{PROG} {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="show a traceback on errors and TensorFlow's own logs")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Train an image classifier, convert it to TFLite in every precision, check drift, benchmark and report."""
    SESSION.debug = debug
    if debug:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        warnings.resetwarnings()


@command("train", TRAIN, "Train a model on a dataset or an image folder and write its model folder.")
def train_command(**v: Any) -> None:
    _stages().train(v)


@command(
    "convert",
    ["model_dir", *CONVERT, *RELOCATE],
    "Convert a model folder's Keras model to TFLite (float32, float16, dynamic, int8).",
)
def convert_command(**v: Any) -> None:
    _stages().convert(v["model_dir"], v)


@command(
    "evaluate",
    ["model_dir", "max_drop", "precision", "eval_threads", *RELOCATE],
    "Measure accuracy drift of every TFLite variant against Keras on the whole test split; exit 1 past --max-drop.",
)
def evaluate_command(**v: Any) -> None:
    failure = _stages().evaluate(v["model_dir"], v)
    if failure:
        raise failure


@command(
    "benchmark",
    ["model_dir", *BENCH],
    "Time every TFLite variant (interleaved, several thread counts) and write benchmark.json.",
)
def benchmark_command(**v: Any) -> None:
    _stages().benchmark(v["model_dir"], v)


@command(
    "report",
    ["model_dir", "max_drop", "samples", *RELOCATE],
    "Write report.md/.json/.csv and plots: which variant to ship and why.",
)
def report_command(**v: Any) -> None:
    _stages().report(v["model_dir"], v)


@command(
    "run",
    [*TRAIN, *CONVERT, "max_drop", *BENCH, "samples"],
    "Train, convert, evaluate, benchmark and report in one go (default: cnn on Fashion-MNIST into "
    "models/fashion-mnist-cnn).",
)
def run_command(**v: Any) -> None:
    stages = _stages()
    # Check every option before hours of work start.
    _train_config(v)
    _precisions(v["precision"])
    _thread_counts(v["threads"])
    folder = stages.train(v)
    stages.convert(folder, v)
    failure = stages.evaluate(folder, {**v, "precision": None})
    stages.benchmark(folder, v)
    stages.report(folder, v)
    if failure:
        raise failure


@app.command("models")
def models_command() -> None:
    """List the models this tool can train."""
    from .models import MODELS

    for spec in MODELS.values():
        console.print(f"[bold]{spec.name:<14}[/bold] {spec.summary}", highlight=False)


@app.command("datasets")
def datasets_command(data_dir: Annotated[Path | None, typer.Option(help="also look here")] = None) -> None:
    """List the named datasets and where a local copy was found."""
    from .data import NAMED_DATASETS

    for named in NAMED_DATASETS.values():
        found = named.find_local(data_dir)
        where = str(found[0]) if found else "[yellow]not on disk[/yellow] (Keras would download it)"
        console.print(
            f"[bold]{named.name:<14}[/bold] {named.native.height}x{named.native.width}x{named.native.channels}, "
            f"{len(named.labels)} classes: {where}"
        )


# --- entry point --------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    error_console.print(f"{PROG}: error: {message}", highlight=False, markup=False, soft_wrap=True)
    return code


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    args = list(sys.argv[1:] if argv is None else argv)
    SESSION.debug, SESSION.stages = False, None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")  # --debug turns them back on
    # Ctrl-C must always stop cleanly, also when started from a non-interactive shell's
    # background job (which inherits SIGINT as ignored); SIGTERM (kill) takes the same path.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = app(args=args or ["--help"], prog_name=PROG, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except (PipelineError, EdgeRuntimeError) as error:
        if SESSION.debug:
            traceback.print_exc()
        return _fail(str(error), error.exit_code)
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as error:  # the parser's own usage errors
        context = getattr(error, "ctx", None)
        command_path = context.command_path if context is not None else PROG
        return _fail(f"{error.format_message()} (see {command_path} --help)", getattr(error, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 - the promise is one line, never a traceback
        if SESSION.debug:
            traceback.print_exc()
        return _fail(f"unexpected {type(error).__name__}: {cause(error)} (run with --debug for details)", 1)

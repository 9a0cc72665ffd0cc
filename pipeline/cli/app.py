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
from edge_runtime.text import printable

from ..devices.deploy import DeviceConfig
from ..errors import GateFailed, Interrupted, PipelineError, UsageError, cause
from ..options import (
    BENCH,
    CONVERT,
    DEVICE,
    OPTIONS,
    RELOCATE,
    TRAIN,
    convert_config,
    device_configs,
    moved,
    precisions,
    thread_counts,
    train_config,
)
from .markup import user

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


# --- stages -------------------------------------------------------------------------------------


class Stages:
    """Runs stages with progress on the console and prints each stage's table."""

    def __init__(self) -> None:
        from .console import RichReporter

        self.reporter = RichReporter(console)
        self.current = ""

    def _start(self, name: str, needs_tensorflow: bool = True) -> None:
        self.current = name
        console.rule(f"[bold]{user(name)}")
        if needs_tensorflow:
            import_tensorflow_quietly()

    def train(self, v: dict[str, Any]) -> Path | None:
        from ..measure.evaluate import near_chance
        from ..training.stage import train
        from .console import train_summary

        config = train_config(v)
        self._start("train")
        result = train(config, self.reporter)
        if not result.written:
            console.print(
                f"trained as a worker of the cluster ({result.test_accuracy:.2%} on the test split); "
                "the chief writes the model folder"
            )
            return None
        console.print(train_summary(result))
        if near_chance(result.test_accuracy, result.classes):
            console.print(
                f"[bold red]warning: the model is near chance level ({result.test_accuracy:.2%} on {result.classes} "
                f"classes, batch {result.batch_size}): it did not learn; do not ship it[/bold red]",
                highlight=False,
            )
        return result.folder

    def convert(self, folder: Path, v: dict[str, Any]) -> None:
        from ..conversion.stage import convert
        from .console import convert_table

        config = convert_config(folder, v)
        self._start("convert")
        console.print(convert_table(convert(config, self.reporter)))

    def evaluate(self, folder: Path, v: dict[str, Any]) -> GateFailed | None:
        from ..measure.evaluate import EvaluateConfig, evaluate
        from .console import disagreement_notes, drift_table

        config = EvaluateConfig(
            folder=folder,
            precisions=precisions(v["precision"]) if v.get("precision") else None,
            max_drop=v["max_drop"],
            threads=v.get("eval_threads"),
            data_path=moved(v),
            data_dir=v["data_dir"],
        )
        self._start("evaluate")
        result = evaluate(config, self.reporter)
        console.print(drift_table(result))
        for note in [*([result.resolution] if result.resolution else []), *disagreement_notes(result)]:
            console.print(f"[dim]{user(note)}[/dim]", highlight=False)
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
        from ..measure.benchmark import BenchmarkConfig, benchmark
        from .console import benchmark_table

        config = BenchmarkConfig(
            folder=folder, threads=thread_counts(v["threads"]), warmup=v["warmup"], runs=v["runs"], rounds=v["rounds"]
        )
        self._start("benchmark", needs_tensorflow=False)
        console.print(benchmark_table(benchmark(config, self.reporter)))

    def report(self, folder: Path, v: dict[str, Any]) -> None:
        from ..reporting.build import ReportConfig, write_report
        from .console import report_table

        config = ReportConfig(
            folder=folder,
            max_drop=v["max_drop"],
            samples=v["samples"],
            data_path=moved(v),
            data_dir=v["data_dir"],
            device=v.get("device"),
        )
        self._start("report")
        report = write_report(config, self.reporter)
        console.print(report_table(report))
        style = "bold" if report.recommended else "bold red"
        console.print(f"[{style}]{user(report.recommendation)}[/{style}]", highlight=False)
        for line in report.runtime_notes:
            console.print(user(line), highlight=False)
        console.print(f"report: {user(folder / 'report.md')}", highlight=False)

    def deploy(self, config: DeviceConfig) -> None:
        from ..devices.deploy import deploy
        from .console import deploy_summary

        self._start(f"deploy to {config.device_name}", needs_tensorflow=False)
        console.print(user(deploy_summary(deploy(config, self.reporter))), highlight=False)

    def benchmark_on(self, configs: list[DeviceConfig], v: dict[str, Any]) -> None:
        from ..devices.on_device import benchmark_on
        from .console import device_benchmark_table

        for config in configs:
            self._start(f"benchmark on {config.device_name}", needs_tensorflow=False)
            result = benchmark_on(config, thread_counts(v["threads"]), v["warmup"], v["runs"], self.reporter)
            console.print(device_benchmark_table(result))

    def evaluate_on(self, configs: list[DeviceConfig], samples: int, v: dict[str, Any]) -> None:
        from ..devices.on_device import DeviceEvaluateConfig, evaluate_on
        from .console import device_drift_table

        for config in configs:
            self._start(f"evaluate on {config.device_name}")
            entry = evaluate_on(
                DeviceEvaluateConfig(config, samples, moved(v), v["data_dir"]),
                self.reporter,
            )
            console.print(device_drift_table(config.device_name, entry))


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
        from .. import __version__

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
    ["model_dir", "max_drop", "precision", "eval_threads", *RELOCATE, "on", "device_samples", *DEVICE],
    "Measure accuracy drift of every TFLite variant against Keras on the whole test split; exit 1 past --max-drop. "
    "With --on HOST: on N test images, on the device.",
)
def evaluate_command(**v: Any) -> None:
    devices = device_configs(v["model_dir"], v["on"], v)
    if devices:
        _stages().evaluate_on(devices, v["device_samples"], v)
        return
    failure = _stages().evaluate(v["model_dir"], v)
    if failure:
        raise failure


@command(
    "benchmark",
    ["model_dir", *BENCH, "on", *DEVICE],
    "Time every TFLite variant (interleaved, several thread counts) and write benchmark.json; with --on HOST, on "
    "the device.",
)
def benchmark_command(**v: Any) -> None:
    devices = device_configs(v["model_dir"], v["on"], v)
    if devices:
        thread_counts(v["threads"])
        _stages().benchmark_on(devices, v)
    else:
        _stages().benchmark(v["model_dir"], v)


@command(
    "deploy",
    ["model_dir", "to", *DEVICE],
    "Copy edge_runtime and the folder's variants to a device over SSH, verified on arrival.",
)
def deploy_command(**v: Any) -> None:
    if not v["to"]:
        raise UsageError("deploy needs --to [USER@]HOST[:DIR]")
    _stages().deploy(device_configs(v["model_dir"], [v["to"]], v)[0])


@command(
    "report",
    ["model_dir", "max_drop", "samples", "device", *RELOCATE],
    "Write report.md/.json/.csv and plots: which variant to ship and why (--device NAME: for that device).",
)
def report_command(**v: Any) -> None:
    _stages().report(v["model_dir"], v)


@command(
    "run",
    [*TRAIN, *CONVERT, "max_drop", *BENCH, "samples", "on", "run_device_samples", *DEVICE],
    "Train, convert, evaluate, benchmark and report in one go (default: cnn on Fashion-MNIST into "
    "models/fashion-mnist-cnn).",
)
def run_command(**v: Any) -> None:
    stages = _stages()
    # Check every option before hours of work start.
    train_config(v)
    convert_config(Path(), v)  # precisions, calibration, the mixed target
    thread_counts(v["threads"])
    device_configs(Path(), v["on"], v)
    folder = stages.train(v)
    if folder is None:  # a worker of a multi-worker run: the chief converts, evaluates and reports
        return
    stages.convert(folder, v)
    failure = stages.evaluate(folder, {**v, "precision": None})
    stages.benchmark(folder, v)
    devices = device_configs(folder, v["on"], v)
    if devices:
        stages.benchmark_on(devices, v)
        stages.evaluate_on(devices, v["run_device_samples"], v)
    stages.report(folder, {**v, "device": devices[0].device_name if devices else None})
    if failure:
        raise failure


@app.command("models")
def models_command() -> None:
    """List the models this tool can train."""
    from ..training.models import MODELS

    for spec in MODELS.values():
        console.print(f"[bold]{spec.name:<14}[/bold] {spec.summary}", highlight=False)


@app.command("datasets")
def datasets_command(data_dir: Annotated[Path | None, typer.Option(help="also look here")] = None) -> None:
    """List the named datasets and where a local copy was found."""
    from ..data.dataset import NAMED_DATASETS

    for named in NAMED_DATASETS.values():
        found = named.find_local(data_dir)
        where = str(found[0]) if found else "[yellow]not on disk[/yellow] (Keras would download it)"
        console.print(
            f"[bold]{named.name:<14}[/bold] {named.native.height}x{named.native.width}x{named.native.channels}, "
            f"{len(named.labels)} classes: {where if not found else user(where)}"
        )


# --- entry point --------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    error_console.print(f"{PROG}: error: {printable(message)}", highlight=False, markup=False, soft_wrap=True)
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

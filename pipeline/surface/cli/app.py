"""`edge-pipeline`: a thin Typer layer over the Python API: it parses options, calls `pipeline.surface.api`, and exits.

Options are declared once in `pipeline.surface.options`; each command takes the options that table lists for it
(`pipeline.surface.cli.parameters` makes them Typer parameters), so `train` and `run` (which takes every stage's
options) cannot drift apart, nor the CLI from the API. Progress and result tables go through the API's
reporter (`pipeline.output.display.RichReporter`); errors are one line on stderr with an exit code.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.text import printable

from ...errors import GateFailed, Interrupted, PipelineError, cause
from ...output.display import RichReporter, console, plain
from .. import api
from ..keywords import cli_options
from ..session import Session
from .parameters import argument, parameter

PROG = "edge-pipeline"
app = typer.Typer(
    name=PROG,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: readable at 80 columns (rich panels cut option names there)
    help="Train an image classifier, convert it to TFLite in every precision, check accuracy drift, benchmark and "
    "report.",
)
HELP = {
    "train": "Train a model on a dataset or an image folder and write its model folder.",
    "convert": "Convert a model folder's Keras model to TFLite (float32, float16, dynamic, int8, mixed).",
    "evaluate": "Measure accuracy drift of every TFLite variant against Keras on the whole test split; exit 1 past "
    "--max-drop. With --on HOST: on N test images, on the device.",
    "benchmark": "Time every TFLite variant (interleaved, several thread counts) and write benchmark.json; with --on "
    "HOST, on the device.",
    "deploy": "Copy edge_runtime and the folder's variants to a device over SSH, verified on arrival.",
    "report": "Write report.md/.json/.csv and plots: which variant to ship and why (--device NAME: for that device).",
    "compare": "Model folders side by side: a table, a Pareto plot, agreement on the same test images; with "
    "--baseline OLD, a regression gate (exit 1 naming each regression).",
    "import": "Import a classifier made elsewhere (.keras, .h5, SavedModel, .tflite) as a model folder, measured on "
    "--data first; then convert, evaluate, benchmark, report and deploy take it as they take a trained one.",
    "run": "Everything, from training to the report (the default: fashion-mnist cnn into models/fashion-mnist-cnn).",
}


class StageReporter(RichReporter):
    """The console reporter, remembering the stage under way (an interruption names it)."""

    current = ""

    def stage(self, name: str) -> None:
        self.current = name
        super().stage(name)


ARGUMENTS = {
    "compare": [argument("folders", "model folders to compare (with --baseline: the new ones)", many=True)],
    "import": [argument("source", "a .keras or .h5 file, a SavedModel folder, or a float32 or quantized .tflite")],
    **{name: [argument("model_dir", "model folder (models/<name>)")]
       for name in ("convert", "evaluate", "benchmark", "deploy", "report")},
}  # fmt: skip


def command(name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register `finish(result)` as the Typer command `name`: its options' text goes to the API's one parser."""

    def register(finish: Callable[[Any], None]) -> Callable[[Any], None]:
        context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        parameters = [context, *ARGUMENTS.get(name, []), *(parameter(o) for o in cli_options(name).values())]

        def handler(ctx: typer.Context, **given: Any) -> None:
            reporter = StageReporter(console())
            try:
                finish(api.command(name, given, Session(reporter, debug=bool(ctx.obj))))
            except KeyboardInterrupt:
                # Typer would turn this into a bare exit code; say what it means for the folder.
                raise Interrupted(_interrupted(name, reporter.current or name)) from None

        handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        handler.__annotations__ = {p.name: p.annotation for p in parameters}
        handler.__doc__ = HELP[name]
        handler.__name__ = f"{name}_command"
        app.command(name, help=HELP[name])(handler)
        return finish

    return register


def _interrupted(command: str, stage: str) -> str:
    """What an interruption kept, and how to go on from there."""
    if command == "train":
        return (
            "interrupted during train; the epochs finished so far are kept in the model folder (checkpoint.npz): "
            "the same command with --resume continues from the last of them"
        )
    if command == "run":
        return (
            f"interrupted during {stage}; the stages and training epochs finished so far are kept: re-run the same "
            "command to continue from there (--force starts over)"
        )
    return (
        f"interrupted during {stage}; the model folder keeps the files it had before this stage (re-run the same "
        "command to finish)"
    )


def _version(value: bool) -> None:
    if value:
        from ... import __version__

        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="show a traceback on errors and TensorFlow's own logs")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Train an image classifier, convert it to TFLite in every precision, check drift, benchmark and report."""
    ctx.obj = debug  # the commands' Session reads it: no module globals
    if debug:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        warnings.resetwarnings()


def _nothing(result: Any) -> None:
    """The result's table is already on the console (the reporter showed it)."""


def _gate(result: Any) -> None:
    if hasattr(result, "gate"):
        result.gate()  # exit 1 past --max-drop (the table's last line already says which variants)


def _compared(result: Any) -> None:
    if result.json_wanted:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    result.gate()  # exit 1 naming each regression against --baseline


for _name in ("train", "import", "convert", "evaluate", "benchmark", "deploy", "report", "run", "compare"):
    command(_name)({"evaluate": _gate, "compare": _compared}.get(_name, _nothing))


@app.command("models")
def models_command() -> None:
    """List the models this tool can train."""
    from ...training.models import MODELS

    for spec in MODELS.values():
        print(f"{spec.name:<14} {spec.summary}")


@app.command("datasets")
def datasets_command(data_dir: Annotated[Path | None, typer.Option(help="also look here")] = None) -> None:
    """List the named datasets and where a local copy was found."""
    from ...data.named import NAMED_DATASETS

    for named in NAMED_DATASETS.values():
        found = named.find_local(data_dir)
        where = str(found[0]) if found else "not on disk (Keras would download it)"
        size = f"{named.native.height}x{named.native.width}x{named.native.channels}"
        print(printable(f"{named.name:<14} {size}, {len(named.labels)} classes: {where}"))


# --- entry point --------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    console(stderr=True).print(plain(f"{PROG}: error: {message}"), highlight=False, soft_wrap=True)
    return code


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")  # --debug turns them back on
    # Ctrl-C must always stop cleanly, also when started from a non-interactive shell's
    # background job (which inherits SIGINT as ignored); SIGTERM (kill) takes the same path.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = app(args=args or ["--help"], prog_name=PROG, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except GateFailed as error:
        return _fail(str(error), error.exit_code)
    except (PipelineError, EdgeRuntimeError) as error:
        if debug:
            traceback.print_exc()
        return _fail(str(error), error.exit_code)
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as error:  # the parser's own usage errors
        context = getattr(error, "ctx", None)
        command_path = context.command_path if context is not None else PROG
        message = error.format_message()
        if context is not None and message.startswith("No such command") and hasattr(context.command, "commands"):
            message += f" Commands: {', '.join(context.command.list_commands(context))}."
        return _fail(f"{message} (see {command_path} --help)", getattr(error, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 - the promise is one line, never a traceback
        if debug:
            traceback.print_exc()
        return _fail(f"unexpected {type(error).__name__}: {cause(error)} (run with --debug for details)", 1)

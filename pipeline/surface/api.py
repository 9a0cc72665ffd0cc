"""The Python API: each command of the command line as a function taking its options as keyword arguments.

``train``, ``convert``, ``evaluate``, ``benchmark``, ``report``, ``deploy``, ``compare`` and ``run`` take the
options of the command of the same name (``--batch-size`` is ``batch_size``), declared once with their types in
``pipeline.surface.options`` (type checkers and editors see them through ``Unpack``); ``evaluate_on``,
``benchmark_on`` and ``benchmark_emulated`` are ``--on HOST`` and ``--emulate CPU``, with results of their own.
Every value is parsed once into the type the stage's config takes, and a wrong type or value raises UsageError
naming the keyword. Each returns a typed result that prints as a table and renders as one in Jupyter. Progress
shows on a rich console unless ``progress=False``. The CLI (``pipeline.surface.cli``) calls `command` below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from ..errors import UsageError
from ..progress import Reporter
from . import session as stages
from . import stage_configs as configs
from .keywords import bind, documented
from .options import (
    BenchmarkOnOptions,
    BenchmarkOptions,
    CompareOptions,
    ConvertOptions,
    DeployOptions,
    EvaluateOnOptions,
    EvaluateOptions,
    ImportOptions,
    ReportOptions,
    RunOptions,
    TrainOptions,
)
from .run import RunResult
from .run import run as run_all
from .session import Session, checked_folder

if TYPE_CHECKING:
    from ..comparison.stage import CompareResult
    from ..conversion.stage import ConvertResult
    from ..devices.deploy import DeployResult
    from ..devices.emulated_bench import EmulatedBenchmark
    from ..devices.on_device import DeviceBenchmark, DeviceDrift
    from ..importing.stage import ImportResult
    from ..measure.benchmark import BenchmarkResult
    from ..measure.evaluate import DriftResult
    from ..reporting.record import Report
    from ..training.stage import TrainResult

__all__ = ["RunResult", "benchmark", "benchmark_emulated", "benchmark_on", "compare", "convert", "deploy",
           "evaluate", "evaluate_on", "import_model", "report", "run", "train"]  # fmt: skip
FOLDER_ERRORS = "UsageError (an option's type or value), FolderError (a missing or damaged model folder)"


def _path(value: object, name: str) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise UsageError(f"{name} wants a path (str or Path), got {value!r}")
    return Path(value)


def _texts(values: tuple[object, ...], name: str) -> tuple[str, ...]:
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise UsageError(f"{name} wants one or more names as text, got {values!r}")
    return tuple(str(v) for v in values)


@documented("train", "TrainResult", f"{FOLDER_ERRORS}, DataError (missing or unusable data)")
def train(*, progress: bool = True, reporter: Reporter | None = None, **options: Unpack[TrainOptions]) -> TrainResult:
    """Train a model on a named dataset or a folder of images and write its model folder."""
    session = Session.of(progress, reporter)
    return stages.train(configs.train_config("train", bind("train", options)), session)


@documented(
    "import_model",
    "ImportResult (the source's own accuracy first; `.folder` is the model folder written)",
    "UsageError (an option, or a source that is not a model), SourceError (a Lambda or unknown custom layer, an input "
    "that is not one NHWC image, an output that does not fit the labels, a source near chance), DataError",
    cli_name="import",
)
def import_model(
    source: str | os.PathLike[str], *, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[ImportOptions],
) -> ImportResult:  # fmt: skip
    """Import a classifier made elsewhere (.keras, .h5, a SavedModel folder, a float32 or quantized .tflite) and write
    an ordinary model folder: the source measured on the data's test split first, its preprocessing (`mean`, `std`,
    `bgr`) and class head (`output_index`, a softmax for logits) applied, its provenance recorded."""
    values = bind("import_model", options)
    config = configs.import_config(_path(source, "source"), "import_model", values)
    return stages.import_model(config, Session.of(progress, reporter))


@documented("convert", "ConvertResult", f"{FOLDER_ERRORS}, DataError (int8 needs the training data), ConversionError")
def convert(
    model_dir: str | os.PathLike[str], *, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[ConvertOptions],
) -> ConvertResult:  # fmt: skip
    """Convert a model folder's model to TFLite in every precision asked for."""
    values = bind("convert", options)
    folder = checked_folder(_path(model_dir, "model_dir"), values["data"])
    return stages.convert(configs.convert_config(folder, "convert", values), Session.of(progress, reporter))


@documented("evaluate", "DriftResult (`.gate()` raises GateFailed past the budget)", f"{FOLDER_ERRORS}, DataError")
def evaluate(
    model_dir: str | os.PathLike[str], *, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[EvaluateOptions],
) -> DriftResult:  # fmt: skip
    """Accuracy drift of every variant against the folder's reference model on the whole test split."""
    values = bind("evaluate", options)
    folder = checked_folder(_path(model_dir, "model_dir"), values["data"])
    return stages.evaluate(configs.evaluate_config(folder, "evaluate", values), Session.of(progress, reporter))


@documented("evaluate_on", "list[DeviceDrift], one per host", f"{FOLDER_ERRORS}, RemoteError (the device)")
def evaluate_on(
    model_dir: str | os.PathLike[str], *hosts: str, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[EvaluateOnOptions],
) -> list[DeviceDrift]:  # fmt: skip
    """`evaluate --on HOST`: class-balanced test images classified on each device ([USER@]HOST[:DIR]) over SSH."""
    values = bind("evaluate_on", options)
    folder = checked_folder(_path(model_dir, "model_dir"), values["data"])
    devices = configs.device_configs(folder, _texts(hosts, "hosts"), "evaluate_on", values)
    found = [configs.device_evaluate_config(device, "evaluate_on", values) for device in devices]
    return stages.evaluate_on(found, Session.of(progress, reporter))


@documented("benchmark", "BenchmarkResult", FOLDER_ERRORS)
def benchmark(
    model_dir: str | os.PathLike[str], *, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[BenchmarkOptions],
) -> BenchmarkResult:  # fmt: skip
    """Latency of every variant on this machine, interleaved, at each thread count."""
    folder = checked_folder(_path(model_dir, "model_dir"))
    config = configs.benchmark_config(folder, "benchmark", bind("benchmark", options))
    return stages.benchmark(config, Session.of(progress, reporter))


@documented("benchmark_on", "list[DeviceBenchmark], one per host", f"{FOLDER_ERRORS}, RemoteError (the device)")
def benchmark_on(
    model_dir: str | os.PathLike[str], *hosts: str, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[BenchmarkOnOptions],
) -> list[DeviceBenchmark]:  # fmt: skip
    """`benchmark --on HOST`: every variant timed on each device ([USER@]HOST[:DIR]) over SSH."""
    values = bind("benchmark_on", options)
    folder = checked_folder(_path(model_dir, "model_dir"))
    devices = configs.device_configs(folder, _texts(hosts, "hosts"), "benchmark_on", values)
    counts = configs.benchmark_config(folder, "benchmark_on", values)
    return stages.benchmark_on(devices, counts, Session.of(progress, reporter))


def benchmark_emulated(
    model_dir: str | os.PathLike[str], *cpus: str, progress: bool = True, reporter: Reporter | None = None
) -> list[EmulatedBenchmark]:
    """`benchmark --emulate CPU`: Arm instructions per image of every variant on an emulated Raspberry Pi.

    cpus: cortex-a76 (pi5), cortex-a72 (pi4) or cortex-a53 (pi3); several for several.

    Returns:
        list[EmulatedBenchmark], one per CPU

    Raises:
        UsageError (an unknown CPU), FolderError, PipelineError (the emulator could not be set up)
    """
    from ..devices.emulated_bench import EmulateConfig

    config = EmulateConfig(checked_folder(_path(model_dir, "model_dir")), _texts(cpus, "cpus"))
    return stages.benchmark_emulated(config, Session.of(progress, reporter))


@documented("report", "Report (`.recommendation` says what to ship)", f"{FOLDER_ERRORS}, DataError")
def report(
    model_dir: str | os.PathLike[str], *, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[ReportOptions],
) -> Report:  # fmt: skip
    """Write report.md/.json/.csv and the plots: which variant to ship and why."""
    values = bind("report", options)
    folder = checked_folder(_path(model_dir, "model_dir"), values["data"])
    return stages.report(configs.report_config(folder, "report", values), Session.of(progress, reporter))


@documented("deploy", "DeployResult", f"{FOLDER_ERRORS}, UnsafeTarget, RemoteError (the device)")
def deploy(
    model_dir: str | os.PathLike[str], *, progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[DeployOptions],
) -> DeployResult:  # fmt: skip
    """Copy edge_runtime and the folder's variants to a device over SSH, verified on arrival."""
    values = bind("deploy", options)
    if not values["to"]:
        raise UsageError("deploy needs to='[USER@]HOST[:DIR]' (--to on the command line)")
    folder = _path(model_dir, "model_dir")
    config = configs.device_configs(folder, [values["to"]], "deploy", values)[0]
    return stages.deploy(config, Session.of(progress, reporter))


@documented("compare", "CompareResult (`.gate()` raises GateFailed naming each regression)", FOLDER_ERRORS)
def compare(
    *folders: str | os.PathLike[str], progress: bool = True, reporter: Reporter | None = None,
    **options: Unpack[CompareOptions],
) -> CompareResult:  # fmt: skip
    """Model folders side by side (a table, a Pareto plot, agreement on the same test images); with `baseline`, a
    regression gate against it."""
    values = bind("compare", options)
    return _compare(tuple(_path(f, "folders") for f in folders), values, Session.of(progress, reporter))


def _compare(folders: tuple[Path, ...], values: Mapping[str, Any], session: Session) -> CompareResult:
    baseline = checked_folder(values["baseline"]) if values["baseline"] is not None else None
    checked = tuple(checked_folder(folder) for folder in folders)
    config = configs.compare_config(checked, {**values, "baseline": baseline})
    return stages.compare(config, bool(values["json"]), session)


@documented("run", "RunResult", f"{FOLDER_ERRORS}, DataError, TrainingFailed, GateFailed (after the report)")
def run(*, progress: bool = True, reporter: Reporter | None = None, **options: Unpack[RunOptions]) -> RunResult:
    """Train, convert, evaluate, benchmark and report in one go, skipping the stages whose record says they are up
    to date and resuming an interrupted training (`force=True` redoes all). A training near chance raises
    TrainingFailed (`keep_going=True` goes on); a variant past the accuracy budget raises GateFailed after the
    report is written (its `result` holds the RunResult)."""
    return run_all(bind("run", options), Session.of(progress, reporter))


def command(name: str, given: Mapping[str, Any], session: Session) -> object:
    """One command of the command line with its flags' values (None: not given): the CLI's one entry point."""
    arguments = {k: given[k] for k in ("model_dir", "folders", "source") if k in given}
    values = bind(name, {k: v for k, v in given.items() if k not in arguments}, cli=True)
    if name == "import":
        return stages.import_model(configs.import_config(Path(arguments["source"]), name, values), session)
    if name == "compare":
        return _compare(tuple(Path(f) for f in arguments["folders"]), values, session)
    if name in ("train", "run"):
        return (
            stages.train(configs.train_config(name, values), session) if name == "train" else run_all(values, session)
        )
    folder = Path(arguments["model_dir"])
    if name == "deploy":
        if not values["to"]:
            raise UsageError("deploy needs --to [USER@]HOST[:DIR]")
        return stages.deploy(configs.device_configs(folder, [values["to"]], name, values)[0], session)
    folder = checked_folder(folder, values.get("data"))
    if name in ("evaluate", "benchmark") and (values.get("on") or values.get("emulate")):
        return _elsewhere(name, folder, values, session)
    made = {
        "convert": lambda: stages.convert(configs.convert_config(folder, name, values), session),
        "evaluate": lambda: stages.evaluate(configs.evaluate_config(folder, name, values), session),
        "benchmark": lambda: stages.benchmark(configs.benchmark_config(folder, name, values), session),
        "report": lambda: stages.report(configs.report_config(folder, name, values), session),
    }
    return made[name]()


def _elsewhere(name: str, folder: Path, values: Mapping[str, Any], session: Session) -> list[object]:
    """`evaluate --on`, `benchmark --on` and `benchmark --emulate`."""
    from ..devices.emulated_bench import EmulateConfig

    devices = configs.device_configs(folder, values["on"], name, values)
    if name == "evaluate":
        found = [configs.device_evaluate_config(device, name, values) for device in devices]
        return list(stages.evaluate_on(found, session))
    timed: list[object] = list(stages.benchmark_on(devices, configs.benchmark_config(folder, name, values), session))
    if values.get("emulate"):
        timed += stages.benchmark_emulated(EmulateConfig(folder, values["emulate"]), session)
    return timed

"""The Python API: the stages of the command line, as functions with its option names and defaults.

``train``, ``convert``, ``evaluate``, ``benchmark``, ``report``, ``deploy`` and ``run`` take the options of
the command of the same name as keyword arguments (``--batch-size`` is ``batch_size``); their signatures
and defaults are made from ``pipeline.surface.options``, the table the CLI is made from too, so the two cannot
drift apart. Each returns a typed result that prints as a table in a terminal and renders as one in
Jupyter. Progress shows on a rich console (terminal or notebook) unless ``progress=False``; TensorFlow's
C++ log lines are kept off it. Failures raise the project's exceptions (``pipeline.errors``) with the
same one-line messages the CLI prints. The CLI (``pipeline.surface.cli.app``) parses, calls these, and prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runtime.backends import native_stderr_captured

from ..errors import DataError, GateFailed, PipelineError, TrainingFailed, UsageError
from ..folder import FolderStore
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from ..store import stage_records as records
from . import stage_configs as configs
from .keywords import bind, documented

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: its C++ INFO lines stay off


def import_tensorflow_quietly(debug: bool = False) -> None:
    """Import TensorFlow with its import-time log lines kept off the terminal (errors are passed on).

    TensorFlow 2.21 logs INFO lines through absl before absl is initialised, when no threshold
    (TF_CPP_MIN_LOG_LEVEL included) applies yet.
    """
    if debug or "tensorflow" in sys.modules:
        return
    with native_stderr_captured() as lines:
        import tensorflow  # noqa: F401
    for line in lines:
        if line[:1] in ("E", "F") and line[1:5].isdigit():
            print(line, file=sys.stderr)


def _reporter(progress: bool, reporter: Reporter | None) -> Reporter:
    if reporter is not None:
        return reporter
    if not progress:
        return SilentReporter()
    from ..output.display import RichReporter

    return RichReporter()


# --- the stages ----------------------------------------------------------------------------------


DEBUG = {"on": False}  # the CLI's --debug: TensorFlow's own log lines are not held back


def _started(reporter: Reporter, name: str, tensorflow: bool) -> None:
    reporter.stage(name)
    if tensorflow:
        import_tensorflow_quietly(DEBUG["on"])


def _train(v: dict[str, Any], reporter: Reporter) -> Any:
    from ..data.dataset import native_format
    from ..training.stage import train as train_stage

    config = configs.train_config(v)
    native_format(config.data)  # a missing or empty data folder is one line now, before TensorFlow loads
    consumed = records.before("train", v, FolderStore(config.folder))
    _started(reporter, "train", tensorflow=True)
    result = train_stage(config, reporter)
    if result.written:
        records.store(FolderStore(config.folder), "train", consumed)
    reporter.result(result)
    return result


def _recorded(stage: str, folder: Path, v: dict[str, Any], work: Callable[[], Any]) -> Any:
    """Run a stage on this machine's folder and record what it consumed (metadata.json's `stages`)."""
    consumed = records.before(stage, v, FolderStore(folder))
    result = work()
    records.store(FolderStore(folder), stage, consumed)
    return result


def _checked_folder(folder: Path, v: dict[str, Any] | None = None) -> Path:
    """The folder, checked now (missing, damaged, or its data moved somewhere that is not there) before TensorFlow
    loads: a wrong path is one line in under a second, not after 15 s of imports."""
    FolderStore(folder).load()
    moved = configs.moved(v or {}) if v is not None and "data_dir" in v else None
    if moved is not None and not Path(moved).is_dir():
        raise DataError(f"{moved}: no such folder; --data wants the folder of images the model was trained on")
    return Path(folder)


def _convert(folder: Path, v: dict[str, Any], reporter: Reporter) -> Any:
    from ..conversion.stage import convert as convert_stage

    config = configs.convert_config(_checked_folder(folder, v), v)
    _started(reporter, "convert", tensorflow=True)
    result = _recorded("convert", folder, v, lambda: convert_stage(config, reporter))
    reporter.result(result)
    return result


def _evaluate(folder: Path, v: dict[str, Any], reporter: Reporter) -> Any:
    from ..devices.on_device import DeviceEvaluateConfig, evaluate_on
    from ..measure.evaluate import EvaluateConfig
    from ..measure.evaluate import evaluate as evaluate_stage

    devices = configs.device_configs(folder, v["on"], v)
    if devices:
        found = []
        for device in devices:
            _started(reporter, f"evaluate on {device.device_name}", tensorflow=True)
            config = DeviceEvaluateConfig(device, v["device_samples"], configs.moved(v), v["data_dir"])
            found.append(evaluate_on(config, reporter))
            reporter.result(found[-1])
        return found
    config = EvaluateConfig(
        folder=_checked_folder(folder, v),
        precisions=configs.precisions(v["precision"]) if v.get("precision") else None,
        max_drop=v["max_drop"],
        threads=v.get("eval_threads"),
        data_path=configs.moved(v),
        data_dir=v["data_dir"],
    )
    _started(reporter, "evaluate", tensorflow=True)
    result = _recorded("evaluate", folder, v, lambda: evaluate_stage(config, reporter))
    reporter.result(result)
    return result


def _benchmark(folder: Path, v: dict[str, Any], reporter: Reporter) -> Any:
    from ..devices.on_device import benchmark_on
    from ..measure.benchmark import BenchmarkConfig
    from ..measure.benchmark import benchmark as benchmark_stage

    threads = configs.thread_counts(v["threads"])
    devices = configs.device_configs(folder, v["on"], v)
    if devices or v.get("emulate"):
        found = []
        for device in devices:
            _started(reporter, f"benchmark on {device.device_name}", tensorflow=False)
            found.append(benchmark_on(device, threads, v["warmup"], v["runs"], reporter))
            reporter.result(found[-1])
        return found + (_emulated(folder, v["emulate"], reporter) if v.get("emulate") else [])
    config = BenchmarkConfig(folder=folder, threads=threads, warmup=v["warmup"], runs=v["runs"], rounds=v["rounds"])
    _started(reporter, "benchmark", tensorflow=False)
    result = _recorded("benchmark", folder, v, lambda: benchmark_stage(config, reporter))
    reporter.result(result)
    return result


def _emulated(folder: Path, cpus: list[str], reporter: Reporter) -> list[Any]:
    from ..devices.emulated_bench import EmulateConfig, benchmark_emulated

    config = EmulateConfig(folder, tuple(cpus))
    names = ", ".join(f"{cpu.name} ({cpu.alias})" for cpu in config.resolved)  # a usage error now, before any work
    _started(reporter, f"benchmark on an emulated {names}", tensorflow=False)
    found = benchmark_emulated(config, reporter)
    for result in found:
        reporter.result(result)
    return found


def _report_config(folder: Path, v: dict[str, Any]) -> Any:
    from ..reporting.build import ReportConfig

    return ReportConfig(
        folder=_checked_folder(folder, v),
        max_drop=v["max_drop"],
        samples=v["samples"],
        data_path=configs.moved(v),
        data_dir=v["data_dir"],
        device=v.get("device"),
        as_default=bool(v.get("as_default")),
    )


def _report(folder: Path, v: dict[str, Any], reporter: Reporter) -> Any:
    from ..reporting.build import write_report

    config = _report_config(folder, v)
    _started(reporter, "report", tensorflow=True)
    result = _recorded("report", folder, v, lambda: write_report(config, reporter))
    reporter.result(result)
    reporter.status(f"report: {Path(folder) / 'report.md'}")
    return result


def _compare(v: dict[str, Any], reporter: Reporter) -> Any:
    from ..comparison.gate import Budgets
    from ..comparison.stage import CompareConfig
    from ..comparison.stage import compare as compare_stage

    budgets = Budgets(v["gate_max_drop"], v["max_slowdown"], v["max_growth"], threads=v["gate_threads"],
                      runs=v["gate_runs"], rounds=v["gate_rounds"])  # fmt: skip
    baseline = _checked_folder(v["baseline"]) if v["baseline"] is not None else None
    folders = tuple(_checked_folder(Path(folder)) for folder in v["folders"])
    config = CompareConfig(folders, baseline, v["compare_output"], v["variant"], budgets, v["summary"],
                           tuple(v["allow_missing"] or ()))  # fmt: skip
    shown = SilentReporter() if v["json"] else reporter  # --json: stdout holds the JSON only
    _started(shown, "compare", tensorflow=False)
    result = compare_stage(config, shown)
    result.json_wanted = bool(v["json"])
    for part in result.parts():
        shown.result(part)
    shown.status(f"comparison: {', '.join(str(p) for p in result.written)}")
    return result


def _deploy(folder: Path, v: dict[str, Any], reporter: Reporter) -> Any:
    from ..devices.deploy import deploy as deploy_stage

    if not v["to"]:
        raise UsageError("deploy needs --to [USER@]HOST[:DIR]")
    config = configs.device_configs(folder, [v["to"]], v)[0]
    _started(reporter, f"deploy to {config.device_name}", tensorflow=False)
    result = deploy_stage(config, reporter)
    reporter.result(result)
    return result


@dataclass(repr=False)
class RunResult(Shown):
    """What `run` made: each stage's result, and the report's recommendation."""

    train: Any
    convert: Any = None
    evaluate: Any = None
    benchmark: Any = None
    devices: list[Any] = field(default_factory=list)
    report: Any = None

    def summary(self) -> str:
        return self.report.summary() if self.report is not None else self.train.summary()

    def table(self) -> Table:
        return (self.report or self.train).table()


def _failed_training(trained: Any) -> str:
    """Why `run` stops after a training that did not learn, and what to try."""
    from ..training.settings import steps_per_epoch, suggested_batch_size, too_few_steps

    images, batch = trained.sizes["train"], trained.batch_size
    hint = (
        f"a smaller --batch-size (now {batch}, {steps_per_epoch(images, batch)} step(s) an epoch; try "
        f"{suggested_batch_size(images)}) or more --epochs"
        if batch and too_few_steps(images, batch)
        else "more --epochs, another --learning-rate, or check the data"
    )
    return (
        f"{trained.folder}: training ended near chance level ({trained.test_accuracy:.2%} on {trained.classes} "
        f"classes, chance {1 / max(trained.classes, 1):.2%}), so run stops before converting a model that did not "
        f"learn; try {hint}, or pass --continue to go on anyway"
    )


def _emulated_cpus(v: dict[str, Any]) -> list[Any]:
    from ..devices.instructions import resolve

    return [resolve(cpu) for cpu in v.get("emulate") or []]


def _or_recorded(stage: str, folder: Path, v: dict[str, Any], reporter: Reporter, work: Callable[..., Any]) -> Any:
    """`run`'s stage: skipped, its result read back, when its record says it is up to date (unless --force)."""
    from ..store import results as recorded_results

    at = None if v.get("force") else records.up_to_date(stage, v, FolderStore(folder))
    if at is None:
        return work(folder, v, reporter)
    reporter.stage(stage)
    reporter.status(f"{stage}: up to date (what it consumed is unchanged since {at}; --force redoes it)")
    if stage == "report":
        from ..reporting.build import build_report

        result = build_report(_report_config(folder, v))
        reporter.result(result)
        return result
    loaders = {
        "train": recorded_results.train_result,
        "convert": recorded_results.convert_result,
        "evaluate": recorded_results.drift_result,
        "benchmark": recorded_results.benchmark_result,
    }
    return loaders[stage](folder)


def _run(v: dict[str, Any], reporter: Reporter) -> RunResult:
    configs.train_config(v)  # every option checked before hours of work start
    configs.convert_config(Path(), v)  # precisions, calibration, the mixed target
    configs.thread_counts(v["threads"])
    configs.device_configs(Path(), v["on"], v)
    _emulated_cpus(v)
    folder = configs.train_config(v).folder
    result = RunResult(_or_recorded("train", folder, v, reporter, lambda _, values, shown: _train(values, shown)))
    if not result.train.written:  # a worker of a multi-worker run: the chief converts, evaluates and reports
        return result
    if result.train.near_chance and not v["keep_going"]:
        raise TrainingFailed(_failed_training(result.train), result)
    evaluating, timing = {**v, "precision": None, "on": None}, {**v, "on": None, "emulate": None}
    result.convert = _or_recorded("convert", folder, v, reporter, _convert)
    result.evaluate = _or_recorded("evaluate", folder, evaluating, reporter, _evaluate)
    result.benchmark = _or_recorded("benchmark", folder, timing, reporter, _benchmark)
    devices = configs.device_configs(folder, v["on"], v)
    if devices or v.get("emulate"):
        result.devices += _benchmark(folder, v, reporter)
        result.devices += _evaluate(folder, {**v, "device_samples": v["run_device_samples"]}, reporter)
    emulated = _emulated_cpus(v)
    device = devices[0].device_name if devices else (emulated[0].device_name if emulated else None)
    reporting = {**v, "device": device}
    result.report = _or_recorded("report", folder, reporting, reporter, _report)
    if result.evaluate.failed:
        raise GateFailed(result.evaluate.gate_message(), result)
    return result


def call(command: str, values: dict[str, Any], reporter: Reporter) -> Any:
    """Run one command with its option values by key, as the CLI parses them (the CLI's one entry point)."""
    folder = Path(values["model_dir"]) if "model_dir" in values else None
    if command == "train":
        return _train(values, reporter)
    if command == "run":
        return _run(values, reporter)
    if command == "compare":
        return _compare(values, reporter)
    stages = {"convert": _convert, "evaluate": _evaluate, "benchmark": _benchmark, "report": _report, "deploy": _deploy}
    return stages[command](folder, values, reporter)


# --- the public functions --------------------------------------------------------------------------


def train(**options: Any) -> Any:
    """Train a model on a named dataset or a folder of images and write its model folder; returns a TrainResult."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    return _train(bind("train", options), _reporter(progress, reporter))


def convert(model_dir: str | Path, **options: Any) -> Any:
    """Convert a model folder's Keras model to TFLite in every precision asked for; returns a ConvertResult."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    v = bind("convert", {"model_dir": model_dir, **options})
    return _convert(v["model_dir"], v, _reporter(progress, reporter))


def evaluate(model_dir: str | Path, **options: Any) -> Any:
    """Accuracy drift of every variant against Keras on the test split; returns a DriftResult (`.gate()` raises
    GateFailed past the budget). With `on`: on each device, a list of DeviceDrift."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    v = bind("evaluate", {"model_dir": model_dir, **options})
    return _evaluate(Path(v["model_dir"]), v, _reporter(progress, reporter))


def benchmark(model_dir: str | Path, **options: Any) -> Any:
    """Latency of every variant, interleaved, at each thread count; returns a BenchmarkResult. With `on`: on each
    device, a list of DeviceBenchmark."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    v = bind("benchmark", {"model_dir": model_dir, **options})
    return _benchmark(Path(v["model_dir"]), v, _reporter(progress, reporter))


def report(model_dir: str | Path, **options: Any) -> Any:
    """Write report.md/.json/.csv and the plots: which variant to ship and why; returns the Report."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    v = bind("report", {"model_dir": model_dir, **options})
    return _report(Path(v["model_dir"]), v, _reporter(progress, reporter))


def deploy(model_dir: str | Path, **options: Any) -> Any:
    """Copy edge_runtime and the folder's variants to a device over SSH, verified on arrival; returns a
    DeployResult."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    v = bind("deploy", {"model_dir": model_dir, **options})
    return _deploy(Path(v["model_dir"]), v, _reporter(progress, reporter))


def compare(*folders: str | Path, **options: Any) -> Any:
    """Model folders side by side (table, Pareto plot, agreement on the same test images); with `baseline`, a
    regression gate against it (`.gate()` raises GateFailed naming each regression); returns a CompareResult."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    return _compare(bind("compare", {"folders": list(folders), **options}), _reporter(progress, reporter))


def run(**options: Any) -> RunResult:
    """Train, convert, evaluate, benchmark and report in one go; returns a RunResult. A variant past the accuracy
    budget raises GateFailed after the report is written (its `result` holds the RunResult)."""
    progress, reporter = options.pop("progress", True), options.pop("reporter", None)
    return _run(bind("run", options), _reporter(progress, reporter))


for _command, _function in (
    ("train", train),
    ("convert", convert),
    ("evaluate", evaluate),
    ("benchmark", benchmark),
    ("report", report),
    ("deploy", deploy),
    ("compare", compare),
    ("run", run),
):
    documented(_command, _function)

__all__ = [
    "PipelineError",
    "RunResult",
    "benchmark",
    "compare",
    "convert",
    "deploy",
    "evaluate",
    "report",
    "run",
    "train",
]

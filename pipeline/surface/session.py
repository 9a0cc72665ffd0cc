"""Each stage run for a caller (the Python functions and the CLI alike): its config checked, its folder first,
the caller's reporter, and what it consumed recorded. Shared by the Python functions (api) and the CLI (cli.app).

A `Session` carries what one call runs with (the reporter, whether TensorFlow's own logs show): no module globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edge_runtime.backends import native_stderr_captured

from ..errors import DataError
from ..folder import FolderStore
from ..progress import Reporter, SilentReporter
from ..store import stage_records as records
from . import stage_configs as configs

if TYPE_CHECKING:
    from ..comparison.stage import CompareConfig, CompareResult
    from ..conversion.stage import ConvertConfig, ConvertResult
    from ..devices.deploy import DeployResult, DeviceConfig
    from ..devices.emulated_bench import EmulateConfig, EmulatedBenchmark
    from ..devices.on_device import DeviceBenchmark, DeviceDrift, DeviceEvaluateConfig
    from ..importing.stage import ImportConfig, ImportResult
    from ..measure.benchmark import BenchmarkConfig, BenchmarkResult
    from ..measure.evaluate import DriftResult, EvaluateConfig
    from ..reporting.record import Report, ReportConfig
    from ..training.config import TrainConfig
    from ..training.stage import TrainResult

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: its C++ INFO lines stay off
R = TypeVar("R")
Values = Mapping[str, Any]


@dataclass(frozen=True)
class Session:
    """What one call of the API or the CLI runs with."""

    reporter: Reporter
    debug: bool = False  # TensorFlow's own log lines are not held back (the CLI's --debug)

    @classmethod
    def of(cls, progress: bool, reporter: Reporter | None) -> Session:
        if reporter is not None:
            return cls(reporter)
        if not progress:
            return cls(SilentReporter())
        from ..output.display import RichReporter

        return cls(RichReporter())

    def started(self, name: str, tensorflow: bool) -> None:
        self.reporter.stage(name)
        if tensorflow:
            import_tensorflow_quietly(self.debug)


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


def checked_folder(folder: Path, moved: Path | None = None) -> Path:
    """The folder, checked now (missing, damaged, or its data moved somewhere that is not there) before TensorFlow
    loads: a wrong path is one line in under a second, not after 15 s of imports."""
    FolderStore(folder).load()
    if moved is not None and not Path(moved).is_dir():
        raise DataError(f"{moved}: no such folder; --data wants the folder of images the model was trained on")
    return Path(folder)


def stage_data(stage: str, config: Any) -> Any:
    """The data a stage reads (its record keeps the identity): the folder's training data, relocated as asked."""
    if stage not in records.READS_DATA:
        return None
    if stage == "train":
        return config.data
    return records.recorded_data(FolderStore(config.folder), config.data_path, config.data_dir)


def _recorded(stage: str, config: Any, work: Callable[[], R]) -> R:
    """Run a stage on this machine's folder and record what it consumed (metadata.json's `stages`)."""
    store = FolderStore(config.folder)
    consumed = records.before(stage, configs.record_of(config), store, stage_data(stage, config))
    result = work()
    records.store(store, stage, consumed)
    return result


def train(config: TrainConfig, session: Session) -> TrainResult:
    from ..data.dataset import native_format
    from ..training.stage import train as train_stage

    native_format(config.data)  # a missing or empty data folder is one line now, before TensorFlow loads
    store = FolderStore(config.folder)
    consumed = records.before("train", configs.record_of(config), store, config.data)
    session.started("train", tensorflow=True)
    result = train_stage(config, session.reporter)
    if result.written:
        records.store(store, "train", consumed)
    session.reporter.result(result)
    return result


def import_model(config: ImportConfig, session: Session) -> ImportResult:
    from ..importing.stage import import_model as import_stage

    session.started("import", tensorflow=True)
    result = import_stage(config, session.reporter)
    session.reporter.result(result)
    return result


def convert(config: ConvertConfig, session: Session) -> ConvertResult:
    from ..conversion.stage import convert as convert_stage

    session.started("convert", tensorflow=True)
    result = _recorded("convert", config, lambda: convert_stage(config, session.reporter))
    session.reporter.result(result)
    return result


def evaluate(config: EvaluateConfig, session: Session) -> DriftResult:
    from ..measure.evaluate import evaluate as evaluate_stage

    session.started("evaluate", tensorflow=True)
    result = _recorded("evaluate", config, lambda: evaluate_stage(config, session.reporter))
    session.reporter.result(result)
    return result


def evaluate_on(devices: list[DeviceEvaluateConfig], session: Session) -> list[DeviceDrift]:
    from ..devices.on_device import evaluate_on as evaluate_there

    found = []
    for config in devices:
        session.started(f"evaluate on {config.device.device_name}", tensorflow=True)
        found.append(evaluate_there(config, session.reporter))
        session.reporter.result(found[-1])
    return found


def benchmark(config: BenchmarkConfig, session: Session) -> BenchmarkResult:
    from ..measure.benchmark import benchmark as benchmark_stage

    session.started("benchmark", tensorflow=False)
    result = _recorded("benchmark", config, lambda: benchmark_stage(config, session.reporter))
    session.reporter.result(result)
    return result


def benchmark_on(devices: list[DeviceConfig], counts: BenchmarkConfig, session: Session) -> list[DeviceBenchmark]:
    from ..devices.on_device import benchmark_on as benchmark_there

    found = []
    for device in devices:
        session.started(f"benchmark on {device.device_name}", tensorflow=False)
        found.append(benchmark_there(device, counts.threads, counts.warmup, counts.runs, session.reporter))
        session.reporter.result(found[-1])
    return found


def benchmark_emulated(config: EmulateConfig, session: Session) -> list[EmulatedBenchmark]:
    from ..devices.emulated_bench import benchmark_emulated as count

    names = ", ".join(f"{cpu.name} ({cpu.alias})" for cpu in config.resolved)  # a usage error now, before any work
    session.started(f"benchmark on an emulated {names}", tensorflow=False)
    found = count(config, session.reporter)
    for result in found:
        session.reporter.result(result)
    return found


def report(config: ReportConfig, session: Session) -> Report:
    from ..reporting.build import write_report

    session.started("report", tensorflow=True)
    result = _recorded("report", config, lambda: write_report(config))
    session.reporter.result(result)
    session.reporter.status(f"report: {Path(config.folder) / 'report.md'}")
    return result


def deploy(config: DeviceConfig, session: Session) -> DeployResult:
    from ..devices.deploy import deploy as deploy_stage

    session.started(f"deploy to {config.device_name}", tensorflow=False)
    result = deploy_stage(config, session.reporter)
    session.reporter.result(result)
    return result


def compare(config: CompareConfig, json_wanted: bool, session: Session) -> CompareResult:
    from ..comparison.stage import compare as compare_stage

    shown = SilentReporter() if json_wanted else session.reporter  # --json: stdout holds the JSON only
    Session(shown, session.debug).started("compare", tensorflow=False)
    result = compare_stage(config, shown)
    result.json_wanted = json_wanted
    for part in result.parts():
        shown.result(part)
    shown.status(f"comparison: {', '.join(str(p) for p in result.written)}")
    return result

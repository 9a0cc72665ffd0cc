"""`run`: every stage in order, each config made and checked before hours of work start, skipping what is up to date.

A stage whose record says it consumed exactly what it would consume now, and whose files are intact, is read
back from the folder instead (`pipeline.store.results`); `force` redoes everything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import GateFailed, TrainingFailed
from ..folder import FolderStore
from ..output.tables import Shown, Table
from ..store import stage_records as records
from . import session as stages
from . import stage_configs as configs
from .session import Session

if TYPE_CHECKING:
    from ..conversion.stage import ConvertConfig, ConvertResult
    from ..devices.deploy import DeviceConfig
    from ..devices.emulated_bench import EmulateConfig, EmulatedBenchmark
    from ..devices.on_device import DeviceBenchmark, DeviceDrift
    from ..measure.benchmark import BenchmarkConfig, BenchmarkResult
    from ..measure.evaluate import DriftResult, EvaluateConfig
    from ..reporting.record import Report, ReportConfig
    from ..training.config import TrainConfig
    from ..training.stage import TrainResult

R = TypeVar("R")


@dataclass(repr=False)
class RunResult(Shown):
    """What `run` made: each stage's result, what devices measured, and the report's recommendation."""

    train: TrainResult
    convert: ConvertResult | None = None
    evaluate: DriftResult | None = None
    benchmark: BenchmarkResult | None = None
    devices: list[DeviceBenchmark | DeviceDrift | EmulatedBenchmark] = field(default_factory=list)
    report: Report | None = None

    def summary(self) -> str:
        return self.report.summary() if self.report is not None else self.train.summary()

    def table(self) -> Table:
        return (self.report or self.train).table()


@dataclass(frozen=True)
class RunPlan:
    """Every stage's config, made (and so checked) before the first stage starts."""

    train: TrainConfig
    convert: ConvertConfig
    evaluate: EvaluateConfig
    benchmark: BenchmarkConfig
    report: ReportConfig
    devices: list[DeviceConfig]
    emulated: EmulateConfig | None
    keep_going: bool
    force: bool


def plan(values: Mapping[str, Any]) -> RunPlan:
    """`run`'s configs from its options: a wrong value anywhere is one line now, not after the training."""
    from ..devices.emulated_bench import EmulateConfig

    train = configs.train_config("run", values)
    folder = train.folder
    devices = configs.device_configs(folder, values["on"], "run", values)
    emulated = EmulateConfig(folder, values["emulate"]) if values["emulate"] else None
    if emulated is not None:
        emulated.resolved  # noqa: B018 - an unknown CPU is a usage error now
    device = devices[0].device_name if devices else (emulated.resolved[0].device_name if emulated else None)
    return RunPlan(
        train=train,
        convert=configs.convert_config(folder, "run", values),
        evaluate=configs.evaluate_config(folder, "run", values),
        benchmark=configs.benchmark_config(folder, "run", values),
        report=configs.report_config(folder, "run", values, device=device),
        devices=devices,
        emulated=emulated,
        keep_going=values["keep_going"],
        force=values["force"],
    )


def _failed_training(trained: TrainResult) -> str:
    """Why `run` stops after a training that did not learn (near chance, or collapsed onto one class), and what to
    try."""
    from ..training.settings import steps_per_epoch, suggested_batch_size, too_few_steps

    images, batch = trained.sizes["train"], trained.batch_size
    if batch and too_few_steps(images, batch) and suggested_batch_size(images) < batch:
        hint = (
            f"a smaller --batch-size (now {batch}, {steps_per_epoch(images, batch)} step(s) an epoch; try "
            f"{suggested_batch_size(images)}) or more --epochs"
        )
    elif trained.learning.collapsed:
        hint = "more --epochs, more images of the other classes, another --learning-rate, or check the data"
    else:
        hint = "more --epochs, another --learning-rate, or check the data"
    return (
        f"{trained.folder}: the model did not learn, it is {trained.learning.reason(trained.labels)}; so run stops "
        f"before converting it: try {hint}, or pass --continue to go on anyway"
    )


def _or_recorded(stage: str, config: Any, force: bool, session: Session, work: Callable[[], R]) -> R:
    """A stage of `run`: skipped, its result read back, when its record says it is up to date (unless force)."""
    from ..store import results

    store = FolderStore(config.folder)
    data = stages.stage_data(stage, config)
    at = None if force else records.up_to_date(stage, configs.record_of(config), store, data)
    if at is None:
        return work()
    session.reporter.stage(stage)
    session.reporter.status(f"{stage}: up to date (what it consumed is unchanged since {at}; --force redoes it)")
    if stage == "report":
        from ..reporting.build import build_report

        report = build_report(config)
        session.reporter.result(report)
        return report  # type: ignore[return-value]
    loaders: dict[str, Callable[[Any], Any]] = {
        "train": results.train_result,
        "convert": results.convert_result,
        "evaluate": results.drift_result,
        "benchmark": results.benchmark_result,
    }
    return loaders[stage](config.folder)


def _imported(folder: Any, session: Session) -> TrainResult | None:
    """An imported model's folder (`edge-pipeline import`): nothing to train, its record read back."""
    from ..errors import FolderError
    from ..store import results

    store = FolderStore(folder)
    try:
        metadata = store.load() if store.has_metadata() else None
    except FolderError:
        return None  # train says what is wrong with it
    if metadata is None or metadata.source is None:
        return None
    session.reporter.stage("train")
    session.reporter.status(f"train: skipped, {folder} holds {metadata.source.file} (imported; nothing to train)")
    return results.train_result(folder)


def run(values: Mapping[str, Any], session: Session) -> RunResult:
    """Every stage in order (see `pipeline.run`)."""
    steps = plan(values)
    trained = _imported(steps.train.folder, session) or _or_recorded(
        "train", steps.train, steps.force, session, lambda: stages.train(steps.train, session)
    )
    result = RunResult(trained)
    if not trained.written:  # a worker of a multi-worker run: the chief converts, evaluates and reports
        return result
    if not trained.learning.learned and not steps.keep_going:
        raise TrainingFailed(_failed_training(trained), result)
    result.convert = _or_recorded("convert", steps.convert, steps.force, session,
                                  lambda: stages.convert(steps.convert, session))  # fmt: skip
    result.evaluate = _or_recorded("evaluate", steps.evaluate, steps.force, session,
                                   lambda: stages.evaluate(steps.evaluate, session))  # fmt: skip
    result.benchmark = _or_recorded("benchmark", steps.benchmark, steps.force, session,
                                    lambda: stages.benchmark(steps.benchmark, session))  # fmt: skip
    result.devices += stages.benchmark_on(steps.devices, steps.benchmark, session)
    if steps.emulated is not None:
        result.devices += stages.benchmark_emulated(steps.emulated, session)
    evaluating = [configs.device_evaluate_config(device, "run", values) for device in steps.devices]
    result.devices += stages.evaluate_on(evaluating, session)
    result.report = _or_recorded("report", steps.report, steps.force, session,
                                 lambda: stages.report(steps.report, session))  # fmt: skip
    if result.evaluate.failed:
        raise GateFailed(result.evaluate.gate_message(), result)
    return result

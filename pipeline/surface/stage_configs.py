"""Bound option values into the stage configs they feed: each option says which config fields it feeds (`Opt.feeds`),
so a config is made by one generic step, with the values as parsed (no coercion here or in the configs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from ..comparison.gate import Budgets
from ..comparison.stage import CompareConfig
from ..conversion.mixed import MixedTarget
from ..conversion.stage import ConvertConfig
from ..data.dataset import DataConfig
from ..devices.deploy import DeviceConfig
from ..devices.on_device import DeviceEvaluateConfig
from ..errors import UsageError
from ..importing.stage import ImportConfig
from ..measure.benchmark import BenchmarkConfig
from ..measure.evaluate import EvaluateConfig
from ..reporting.record import ReportConfig
from ..training.config import HyperParams, TrainConfig
from ..training.distribute import DistributeConfig
from ..training.models import ModelOptions
from .keywords import cli_options, command_options
from .options import COMMANDS, FUNCTIONS

C = TypeVar("C")
Values = Mapping[str, Any]


def build(cls: type[C], command: str, values: Values, **fixed: Any) -> C:
    """A `cls` from the values of the options of `command` that feed its fields, and `fixed` fields."""
    options = cli_options(command) if command in COMMANDS else command_options(command)
    fields: dict[str, Any] = {}
    for keyword, option in options.items():
        for target, name in option.opt.feeds:
            if target is cls and keyword in values:
                fields[name] = values[keyword]
    return cls(**{**fields, **fixed})


def data_config(command: str, values: Values) -> DataConfig:
    return build(DataConfig, command, values)


def train_config(command: str, values: Values) -> TrainConfig:
    """`train`'s config (also `run`'s first stage, which resumes unless --force), the model's options checked."""
    from ..training.models import check_options, get_spec
    from ..training.stage import augmentation_for

    options = build(ModelOptions, command, values)
    check_options(get_spec(values["model"]), options)
    resume = values["resume"] if "resume" in values else (False if values.get("force") else None)
    return build(
        TrainConfig,
        command,
        values,
        data=data_config(command, values),
        options=options,
        hparams=build(HyperParams, command, values),
        augmentation=augmentation_for(values["augment"], values["flip"]),
        distribute=build(DistributeConfig, command, values),
        resume=resume,
    )


def convert_config(folder: Path, command: str, values: Values) -> ConvertConfig:
    return build(ConvertConfig, command, values, folder=Path(folder), target=build(MixedTarget, command, values))


def evaluate_config(folder: Path, command: str, values: Values) -> EvaluateConfig:
    return build(EvaluateConfig, command, values, folder=Path(folder))


def benchmark_config(folder: Path, command: str, values: Values) -> BenchmarkConfig:
    return build(BenchmarkConfig, command, values, folder=Path(folder))


def report_config(folder: Path, command: str, values: Values, **fixed: Any) -> ReportConfig:
    return build(ReportConfig, command, values, folder=Path(folder), **fixed)


def import_config(source: Path, command: str, values: Values) -> ImportConfig:
    return build(ImportConfig, command, values, source=Path(source), data=data_config(command, values))


def compare_config(folders: tuple[Path, ...], values: Values) -> CompareConfig:
    return build(CompareConfig, "compare", values, folders=folders, budgets=build(Budgets, "compare", values))


def device_configs(folder: Path, targets: Iterable[str], command: str, values: Values) -> list[DeviceConfig]:
    """One DeviceConfig per --on/--to target, each [USER@]HOST[:DIR] parsed now (not after hours of training)."""
    configs = [build(DeviceConfig, command, values, folder=Path(folder), target=target) for target in targets]
    for config in configs:
        config.parsed  # noqa: B018 - parses [USER@]HOST[:DIR]: a usage error now, not after training
    if values.get("device_name") and len(configs) > 1:
        raise UsageError("--device-name names one device; with several --on, each is stored under its HOST")
    return configs


def device_evaluate_config(device: DeviceConfig, command: str, values: Values) -> DeviceEvaluateConfig:
    return build(DeviceEvaluateConfig, command, values, device=device)


@cache
def _neutral_fields() -> frozenset[tuple[type, str]]:
    """The config fields that options change nothing of what a stage makes feed (paths, devices, progress)."""
    return frozenset(
        feed for name in FUNCTIONS for option in command_options(name).values() if option.opt.neutral
        for feed in option.opt.feeds
    )  # fmt: skip


def record_of(config: object) -> dict[str, Any]:
    """What in a stage's config shapes what it makes (its stage record keeps it): every field, nested configs
    too, but its folder and those neutral options feed."""
    found = {}
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        if field.name == "folder" or (type(config), field.name) in _neutral_fields():
            continue
        value = getattr(config, field.name)
        found[field.name] = (
            record_of(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value
        )
    return found

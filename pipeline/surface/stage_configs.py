"""Option values (by their key in pipeline.surface.options) into the stage configs they feed, checked first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..choices import Precision, parse_precisions
from ..conversion.mixed import MixedTarget
from ..conversion.stage import ConvertConfig
from ..data.dataset import DataConfig
from ..devices.deploy import DeviceConfig
from ..errors import UsageError
from ..training.config import HyperParams, TrainConfig
from ..training.distribute import DistributeConfig
from ..training.models import ModelOptions


def data_config(v: dict[str, Any]) -> DataConfig:
    return DataConfig(
        dataset=v["dataset"],
        data_path=v["data"],
        data_dir=v["data_dir"],
        validation_split=v["validation_split"],
        test_split=v["test_split"],
        seed=v["seed"],
        limit=v["limit"],
        allow_download=v["download"],
        cache=v["cache"],
    )


def train_config(v: dict[str, Any]) -> TrainConfig:
    from ..training.models import check_options, get_spec
    from ..training.stage import augmentation_for

    options = ModelOptions(
        alpha=v["alpha"],
        input_size=v["input_size"],
        weights=v["weights"],
        dropout=v["dropout"],
        fine_tune=v["fine_tune"],
    )
    check_options(get_spec(v["model"]), options)
    hparams = HyperParams(
        epochs=v["epochs"],
        batch_size=v["batch_size"],
        learning_rate=v["learning_rate"],
        patience=v["patience"],
        fine_tune_epochs=v["fine_tune_epochs"],
        seed=v["seed"],
        label_smoothing=v["label_smoothing"],
    )
    return TrainConfig(
        data=data_config(v),
        model=v["model"],
        options=options,
        hparams=hparams,
        augmentation=augmentation_for(v["augment"], v["flip"]),
        invert=v["invert"],
        output=v["output"],
        name=v["name"],
        tensorboard=v["tensorboard"],
        distribute=DistributeConfig(v["distribute"], v["replicas"], v["mixed_precision"]),
        overwrite=v["overwrite"],
        resume=v["resume"] if "resume" in v else (False if v.get("force") else None),  # run resumes unless --force
    )


def moved(v: dict[str, Any]) -> Path | None:
    """Where the training data is now: `--data` of convert/evaluate/report, or of `run` (the folder it trains on)."""
    return v["data_moved"] if "data_moved" in v else v.get("data")


def precisions(values: list[Precision] | None) -> tuple[Precision, ...]:
    return parse_precisions(values or None)


def sample_counts(text: str | None) -> tuple[int, ...] | None:
    """--calibration-samples: one count, or several separated by commas (a sweep)."""
    if text is None:
        return None
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(
            f"--calibration-samples wants a whole number, or several separated by commas like 100,300,1000; "
            f"got {text!r}"
        ) from None
    if not counts:
        raise UsageError(f"--calibration-samples wants at least one count, got {text!r}")
    return counts


def convert_config(folder: Path, v: dict[str, Any]) -> ConvertConfig:
    return ConvertConfig(
        folder=folder,
        precisions=precisions(v["precision"]),
        io_type=v["io_type"],
        calibration_samples=sample_counts(v["calibration_samples"]),
        calibration=v["calibration"],
        route=v["route"],
        data_path=moved(v),
        data_dir=v["data_dir"],
        target_runtime=v["target_runtime"],
        target=MixedTarget(min_agreement=v["min_agreement"], max_float_share=v["max_float_share"]),
        targets=tuple(v["target"] or ()),
    )


def thread_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--threads wants whole numbers separated by commas, like 1,2,4; got {text!r}") from None
    if not counts or any(c < 1 for c in counts):
        raise UsageError(f"--threads wants whole numbers of at least 1, got {text!r}")
    return tuple(dict.fromkeys(counts))


def device_configs(folder: Path, targets: list[str] | None, v: dict[str, Any]) -> list[DeviceConfig]:
    """One DeviceConfig per --on/--to target, validated before any work starts."""
    configs = [
        DeviceConfig(
            folder=folder,
            target=target,
            name=v["device_name"],
            ssh_command=v["ssh_command"],
            python=v["python"],
            setup=v["setup"],
            interpreter=v["interpreter"],
            timeout=v["timeout"],
        )
        for target in targets or []
    ]
    for config in configs:
        config.parsed  # noqa: B018 - parses [USER@]HOST[:DIR]: a usage error now, not after training
    if v["device_name"] and len(configs) > 1:
        raise UsageError("--device-name names one device; with several --on, each is stored under its HOST")
    return configs

"""Every option of every stage once: its type, help, and a default read from the stage config it feeds.

The one source of both the command line (``pipeline.surface.cli.parameters`` makes Typer parameters of them) and
the Python API (``pipeline.surface.api`` makes function signatures of them). Each command names the options it
takes, so `train` and `run` (which takes every stage's options) cannot drift apart, and no default is
written twice: `tests/test_cli_options.py` checks that every option defaults to its config's value.
Choices are edge_runtime's str Enums, parsed with this project's one-line messages. No Typer here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..choices import BackendName, Calibration, Choice, GateCheck, IoType, Precision, Route, Target, parse
from ..comparison.gate import Budgets
from ..comparison.stage import CompareConfig
from ..conversion.mixed import MixedTarget
from ..conversion.stage import ConvertConfig
from ..data.dataset import DataConfig
from ..devices.deploy import DeviceConfig
from ..devices.on_device import DeviceEvaluateConfig
from ..devices.ssh import SSH_COMMAND_ENV
from ..measure.benchmark import BenchmarkConfig
from ..measure.evaluate import EvaluateConfig
from ..reporting.build import ReportConfig
from ..training.config import HyperParams, TrainConfig
from ..training.distribute import Distribute, DistributeConfig
from ..training.models import ModelOptions


def _choice(kind: type[Choice]) -> Callable[[str], Choice]:
    """A parser for one member of `kind` (UsageError, with the choices, otherwise)."""

    def parser(text: str) -> Choice:
        return parse(kind, text)

    return parser


@dataclass(frozen=True)
class Opt:
    """One command-line option. `source` is the (config class, field) whose default it shows."""

    type: Any
    help: str
    source: tuple[type, str] | None = None
    default: Any = None  # only for options without a config field (positional arguments, flags of the CLI)
    flags: tuple[str, ...] = ()
    argument: bool = False
    parser: Callable[[str], Any] | None = None
    metavar: str | None = None

    @property
    def value(self) -> Any:
        """The default the CLI shows and the API takes: the config's own, in the CLI's spelling."""
        if self.source is None:
            return self.default
        default = getattr(*self.source)
        if isinstance(default, Choice):
            return default
        if isinstance(default, tuple) and default and isinstance(default[0], int):
            return ",".join(map(str, default))  # thread counts
        return default


def _choice_opt(kind: type[Choice], help_text: str, source: tuple[type, str]) -> Opt:
    """An option whose value is one member of `kind`, validated by Typer."""
    return Opt(kind, help_text, source, parser=_choice(kind), metavar="|".join(kind.values()))


OPTIONS: dict[str, Opt] = {
    "model_dir": Opt(Path, "model folder (models/<name>)", default=..., argument=True),
    # data
    "dataset": Opt(str, "named dataset: fashion-mnist, mnist or cifar10", (DataConfig, "dataset")),
    "data": Opt(
        Path | None, "folder of images with one sub-folder per class, instead of --dataset", (DataConfig, "data_path")
    ),
    "data_moved": Opt(
        Path | None,
        "where the image folder the model was trained on is now, if it moved",
        (EvaluateConfig, "data_path"),
        flags=("--data",),
    ),
    "data_dir": Opt(Path | None, "where to look first for a named dataset's files", (DataConfig, "data_dir")),
    "validation_split": Opt(
        float, "share of the training images held out for validation", (DataConfig, "validation_split")
    ),
    "test_split": Opt(float, "share of an image folder held out for testing", (DataConfig, "test_split")),
    "limit": Opt(int | None, "use at most this many training images (quick runs)", (DataConfig, "limit")),
    "download": Opt(
        bool,
        "let Keras download a named dataset that is not on disk",
        (DataConfig, "allow_download"),
        flags=("--download/--no-download",),
    ),
    "cache": Opt(
        Path | None,
        "image folders: keep the images decoded at the model's size in this folder, for later runs and stages "
        "(default: a temporary folder; the images are streamed from it either way)",
        (DataConfig, "cache"),
    ),
    # model
    "model": Opt(str, "cnn, mobilenet_v2, mlp or vgg16", (TrainConfig, "model")),
    "alpha": Opt(float, "MobileNetV2 width multiplier: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4", (ModelOptions, "alpha")),
    "input_size": Opt(
        int | None,
        "square input size in pixels (default: the dataset's, 96 for mobilenet_v2)",
        (ModelOptions, "input_size"),
    ),
    "weights": Opt(str, "backbone weights: imagenet, none, or a local .h5/.weights.h5 file", (ModelOptions, "weights")),
    "fine_tune": Opt(
        int,
        "after training the head, unfreeze this many top layers of a pretrained backbone",
        (ModelOptions, "fine_tune"),
    ),
    "fine_tune_epochs": Opt(int, "epochs of the fine-tuning phase", (HyperParams, "fine_tune_epochs")),
    "dropout": Opt(float, "dropout before the classifier of transfer models", (ModelOptions, "dropout")),
    # training
    "epochs": Opt(int, "maximum epochs (early stopping on validation loss keeps the best)", (HyperParams, "epochs")),
    "batch_size": Opt(
        int | None,
        "images per training step (default: 128, smaller when an epoch would have fewer than 20 steps)",
        (HyperParams, "batch_size"),
    ),
    "learning_rate": Opt(
        float | None, "initial learning rate, cosine-decayed (default: the model's)", (HyperParams, "learning_rate")
    ),
    "seed": Opt(int, "seed for splits, shuffling and initial weights", (HyperParams, "seed")),
    "patience": Opt(int, "epochs without a better validation loss before stopping", (HyperParams, "patience")),
    "label_smoothing": Opt(
        float,
        "label smoothing of the loss (bounds the logits, which int8 then resolves finely)",
        (HyperParams, "label_smoothing"),
    ),
    "augment": Opt(
        bool, "random rotation, shift, shear and zoom while training", default=False, flags=("--augment/--no-augment",)
    ),
    "flip": Opt(
        bool,
        "random horizontal flips while training (clothing, objects; never digits or text)",
        default=False,
        flags=("--flip/--no-flip",),
    ),
    "invert": Opt(
        bool,
        "invert colours (255 - x) before the model, in training and on the device",
        (TrainConfig, "invert"),
        flags=("--invert/--no-invert",),
    ),
    "tensorboard": Opt(Path | None, "write TensorBoard logs to this folder", (TrainConfig, "tensorboard")),
    "distribute": Opt(
        Distribute,
        "none, mirrored (every local GPU; tf.distribute.MirroredStrategy) or multi-worker (several machines, "
        "configured by TF_CONFIG; only the chief writes the model folder); --batch-size is per replica",
        (DistributeConfig, "kind"),
        parser=_choice(Distribute),
        metavar="none|mirrored|multi-worker",
    ),
    "replicas": Opt(
        int | None,
        "mirrored on a machine without GPUs: this many logical CPU devices (to try the distributed path)",
        (DistributeConfig, "replicas"),
    ),
    "mixed_precision": Opt(
        bool,
        "train in mixed_float16 (float32 variables and output; for GPUs); the saved model is float32",
        (DistributeConfig, "mixed_precision"),
    ),
    "output": Opt(Path | None, "model folder to write (default: models/<dataset>-<model>)", (TrainConfig, "output")),
    "name": Opt(
        str | None, "model name (default: the --output folder name, else <dataset>-<model>)", (TrainConfig, "name")
    ),
    "overwrite": Opt(
        bool,
        "replace a different model, or one trained with other settings, in the output folder",
        (TrainConfig, "overwrite"),
    ),
    # conversion
    "precision": Opt(
        list[Precision] | None,
        f"{', '.join(Precision.values())}; repeat for several (default: all)",
        parser=_choice(Precision),
        metavar="PRECISION",
    ),
    "io_type": _choice_opt(
        IoType,
        "int8 model's input/output type: int8, uint8 (Edge TPU-era tools) or float32",
        (ConvertConfig, "io_type"),
    ),
    "calibration_samples": Opt(
        str | None,
        "class-balanced training images to calibrate int8 on (default: 300, or all of them when there are fewer); "
        "several, like 100,300,1000, also sweep int8 agreement over 3 draws of each (the variants use the largest)",
        (ConvertConfig, "calibration_samples"),
    ),
    "calibration": _choice_opt(
        Calibration,
        "how int8 activation ranges are estimated: min-max (widest range seen), moving-average "
        "(litert-quantizer's default) or tf (the TF converter's)",
        (ConvertConfig, "calibration"),
    ),
    "min_agreement": Opt(
        float,
        "mixed: percent of validation images whose class must match Keras' (with 95% confidence)",
        (MixedTarget, "min_agreement"),
    ),
    "max_float_share": Opt(
        float, "mixed: largest size allowed, as a share of the float32 file", (MixedTarget, "max_float_share")
    ),
    "target": Opt(
        list[Target] | None,
        "variants for: tflite (any TFLite interpreter, the model's own input) or mediapipe (MediaPipe Tasks "
        "and the Task Library on phones: RGB input, float32/uint8 I/O); repeat for both (default: tflite)",
        parser=_choice(Target),
        metavar="TARGET",
    ),
    "route": _choice_opt(Route, "conversion route: auto, saved-model or keras-litert", (ConvertConfig, "route")),
    "target_runtime": Opt(
        str | None,
        "oldest TFLite runtime every variant must run on, e.g. 2.14 for "
        "tflite-runtime (default: the newest); a precision that cannot is skipped",
        (ConvertConfig, "target_runtime"),
    ),
    # evaluation and report
    "max_drop": Opt(
        float,
        "percentage points of top-1 accuracy a variant may lose against Keras (a positive "
        "budget is never finer than one test image); evaluate and run exit 1 if one loses more, "
        "report marks it",
        (EvaluateConfig, "max_drop"),
    ),
    "samples": Opt(int, "test images in the report's picture grid", (ReportConfig, "samples")),
    # benchmark
    "threads": Opt(str, "thread counts to time, comma-separated", (BenchmarkConfig, "threads")),
    "warmup": Opt(int, "untimed invokes before timing", (BenchmarkConfig, "warmup")),
    "runs": Opt(int, "timed invokes per variant and thread count", (BenchmarkConfig, "runs")),
    "rounds": Opt(int, "interleaved rounds the runs are split into", (BenchmarkConfig, "rounds")),
    # a device over SSH
    "to": Opt(str | None, "where to deploy: [USER@]HOST[:DIR] (default DIR: ~/edge-pipeline/<model name>)"),
    "on": Opt(
        list[str] | None,
        "run on this device over SSH instead of here: [USER@]HOST[:DIR]; repeat for several",
        metavar="HOST",
    ),
    "device_name": Opt(
        str | None, "store the device's results under this name (default: HOST as written)", (DeviceConfig, "name")
    ),
    "ssh_command": Opt(
        str | None,
        f"ssh program and options, e.g. 'ssh -F FILE' (default: ${SSH_COMMAND_ENV}, else ssh)",
        (DeviceConfig, "ssh_command"),
    ),
    "python": Opt(
        str | None, "Python on the device (default: the venv --setup made, else python3)", (DeviceConfig, "python")
    ),
    "setup": Opt(
        bool,
        "create ~/edge-pipeline/venv on the device with numpy, Pillow and --interpreter from its package index",
        (DeviceConfig, "setup"),
    ),
    "interpreter": Opt(
        BackendName,
        "what --setup installs: litert (ai-edge-litert) or tflite-runtime (legacy, numpy<2)",
        (DeviceConfig, "interpreter"),
        parser=_choice(BackendName),
        metavar="litert|tflite-runtime",
    ),
    "timeout": Opt(float, "seconds one command on the device may take", (DeviceConfig, "timeout")),
    "device_samples": Opt(
        int,
        "class-balanced test images sent to a device to evaluate on",
        (DeviceEvaluateConfig, "samples"),
        flags=("--samples",),
    ),
    "run_device_samples": Opt(
        int, "with --on: test images sent to the device", (DeviceEvaluateConfig, "samples"), flags=("--device-samples",)
    ),
    "device": Opt(
        str | None,
        "recommend for this device of benchmark.json (its latency, its accuracy check), or an emulated CPU (pi5, "
        "pi4, pi3: its instruction counts)",
    ),
    "as_default": Opt(
        bool,
        "with --device: also make that device's pick the folder's default (what edge-runtime runs given the folder); "
        "without, the pick is recorded for that device only and deploy sends it there",
        (ReportConfig, "as_default"),
    ),
    "emulate": Opt(
        list[str] | None,
        "count Arm instructions per image on an emulated Raspberry Pi instead of timing here: cortex-a76 (pi5), "
        "cortex-a72 (pi4) or cortex-a53 (pi3); repeat for several (run: as well as timing here)",
        metavar="CPU",
    ),
    "keep_going": Opt(
        bool,
        "go on to convert, evaluate, benchmark and report even when training ended near chance level",
        default=False,
        flags=("--continue",),
    ),
    "resume": Opt(
        bool,
        "continue an interrupted training from its last finished epoch (run does unless --force)",
        (TrainConfig, "resume"),
    ),
    "force": Opt(bool, "redo every stage, also those whose record says they are up to date", default=False),
    # compare
    "folders": Opt(list[Path], "model folders to compare (with --baseline: the new ones)", default=..., argument=True),
    "baseline": Opt(
        Path | None,
        "gate: the model folder in production; exit 1 naming each regression of the folders against it",
        (CompareConfig, "baseline"),
    ),
    "gate_max_drop": Opt(
        float,
        "gate: percentage points of accuracy the new model may lose against the baseline (a drop McNemar's test "
        "does not find significant is noise, not a regression)",
        (Budgets, "max_drop"),
        flags=("--max-drop",),
    ),
    "max_slowdown": Opt(
        float, "gate: percent of latency (or emulated instructions) it may add", (Budgets, "max_slowdown")
    ),
    "max_growth": Opt(float, "gate: percent of file size it may add", (Budgets, "max_growth")),
    "variant": Opt(
        str | None,
        "gate and agreement: this variant of every folder (default: each one's recommended)",
        (CompareConfig, "variant"),
    ),
    "gate_threads": Opt(int, "gate: interpreter threads for the re-timing", (Budgets, "threads"), flags=("--threads",)),
    "gate_runs": Opt(int, "gate: timed invokes of each file", (Budgets, "runs"), flags=("--runs",)),
    "gate_rounds": Opt(
        int, "gate: interleaved rounds the runs are split into", (Budgets, "rounds"), flags=("--rounds",)
    ),
    "allow_missing": Opt(
        list[GateCheck] | None,
        f"gate: a check that may be missing (cannot be made) without failing the gate: {', '.join(GateCheck.values())} "
        "(one emulated CPU); repeat for several",
        parser=_choice(GateCheck),
        metavar="CHECK",
    ),
    "compare_output": Opt(Path, "folder for comparison.md/.json/.png", (CompareConfig, "output"), flags=("--output",)),
    "json": Opt(bool, "print the comparison as JSON on stdout (for CI), instead of tables", default=False),
    "summary": Opt(
        Path | None,
        "also append the comparison as markdown to this file (in GitHub Actions: $GITHUB_STEP_SUMMARY)",
        default=None,
    ),
    "eval_threads": Opt(
        int | None,
        "interpreter threads for evaluation (default: all cores)",
        (EvaluateConfig, "threads"),
        flags=("--threads",),
    ),
}
DATA = ["dataset", "data", "data_dir", "validation_split", "test_split", "limit", "download", "cache"]
RELOCATE = ["data_moved", "data_dir"]
MODEL = ["model", "alpha", "input_size", "weights", "fine_tune", "fine_tune_epochs", "dropout"]
FIT = ["epochs", "batch_size", "learning_rate", "seed", "patience", "label_smoothing", "augment", "flip", "invert"]
DISTRIBUTE = ["distribute", "replicas", "mixed_precision"]
TRAIN = [*DATA, *MODEL, *FIT, "tensorboard", "output", "name", "overwrite", *DISTRIBUTE]
DEVICE = ["device_name", "ssh_command", "python", "setup", "interpreter", "timeout"]
CONVERT = [
    "precision",
    "io_type",
    "calibration_samples",
    "calibration",
    "min_agreement",
    "max_float_share",
    "target",
    "route",
    "target_runtime",
]
BENCH = ["threads", "warmup", "runs", "rounds"]
# The options each command takes, in the order --help lists them (the API's keyword arguments too).
COMMANDS: dict[str, list[str]] = {
    "train": [*TRAIN, "resume"],
    "convert": ["model_dir", *CONVERT, *RELOCATE],
    "evaluate": ["model_dir", "max_drop", "precision", "eval_threads", *RELOCATE, "on", "device_samples", *DEVICE],
    "benchmark": ["model_dir", *BENCH, "on", "emulate", *DEVICE],
    "deploy": ["model_dir", "to", *DEVICE],
    "report": ["model_dir", "max_drop", "samples", "device", "as_default", *RELOCATE],
    "compare": [
        "folders",
        "baseline",
        "gate_max_drop",
        "max_slowdown",
        "max_growth",
        "variant",
        "gate_threads",
        "gate_runs",
        "gate_rounds",
        "allow_missing",
        "compare_output",
        "json",
        "summary",
    ],
    "run": [
        *TRAIN,
        *CONVERT,
        "max_drop",
        *BENCH,
        "samples",
        "on",
        "emulate",
        "run_device_samples",
        *DEVICE,
        "keep_going",
        "force",
    ],
}

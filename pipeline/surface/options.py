"""Every option of every command, declared once: its Python type, its help, the config fields it feeds, its bounds.

A command's options are the keys of its TypedDict (`COMMANDS`), in the order `--help` lists them; the Python API
takes them as keyword arguments (`**options: Unpack[ConvertOptions]`, so type checkers and editors know them), the
command line as flags (`pipeline.surface.cli.parameters`). Options several commands share are one `Annotated`
alias. A default is written once: the config field's (`Opt.feeds`), or a named constant the help interpolates;
`tests/test_cli_options.py` fails when a default is written twice. No Typer and no TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypedDict

from edge_runtime.limits import MAX_THREADS

from ..choices import BackendName, Calibration, GateCheck, IoType, Precision, Resize, Route, Target
from ..comparison.gate import Budgets
from ..comparison.stage import CompareConfig
from ..conversion.mixed import MixedTarget
from ..conversion.stage import DEFAULT_CALIBRATION_SAMPLES, MIN_CALIBRATION_SAMPLES, ConvertConfig
from ..data.dataset import DataConfig
from ..devices.deploy import DeviceConfig
from ..devices.on_device import DeviceEvaluateConfig
from ..devices.ssh import SSH_COMMAND_ENV
from ..importing.stage import ImportConfig
from ..measure.benchmark import MAX_ROUNDS, MAX_RUNS, MAX_WARMUP, BenchmarkConfig
from ..measure.evaluate import EvaluateConfig
from ..reporting.record import ReportConfig
from ..training.config import HyperParams, TrainConfig
from ..training.distribute import Distribute, DistributeConfig
from ..training.models import ModelOptions
from ..training.settings import DEFAULT_BATCH_SIZE, MIN_STEPS_PER_EPOCH
from .parsing import Opt

# --- options several commands share ----------------------------------------------------------------
MaxDrop = Annotated[float, Opt(
    "percentage points of top-1 accuracy a variant may lose against its reference (a positive budget is never finer "
    "than one test image); evaluate and run exit 1 if one loses more, report marks it",
    feeds=((EvaluateConfig, "max_drop"),), low=0, high=100)]  # fmt: skip
ReportMaxDrop = Annotated[float | None, Opt(
    "percentage points of top-1 accuracy a variant may lose against its reference; report marks it (unset: the "
    "budget the last evaluate used, from drift.json)", feeds=((ReportConfig, "max_drop"),), low=0,
    high=100)]  # fmt: skip
Moved = Annotated[Path | None, Opt(
    "where the image folder the model was trained on is now, if it moved",
    feeds=((ConvertConfig, "data_path"), (EvaluateConfig, "data_path"), (ReportConfig, "data_path"),
           (DeviceEvaluateConfig, "data_path")), neutral=True)]  # fmt: skip
DataDir = Annotated[Path | None, Opt(
    "where to look first for a named dataset's files",
    feeds=((DataConfig, "data_dir"), (ConvertConfig, "data_dir"), (EvaluateConfig, "data_dir"),
           (ReportConfig, "data_dir"), (DeviceEvaluateConfig, "data_dir")), neutral=True)]  # fmt: skip
On = Annotated[tuple[str, ...], Opt(
    "run on this device over SSH instead of here: [USER@]HOST[:DIR]; repeat for several", default=(), neutral=True,
    metavar="HOST")]  # fmt: skip
Emulate = Annotated[tuple[str, ...], Opt(
    "count Arm instructions per image on an emulated Raspberry Pi instead of timing here: cortex-a76 (pi5), "
    "cortex-a72 (pi4) or cortex-a53 (pi3); repeat for several (run: as well as timing here)", default=(),
    neutral=True, metavar="CPU")]  # fmt: skip
Threads = Annotated[tuple[int, ...], Opt(
    "thread counts to time, comma-separated", feeds=((BenchmarkConfig, "threads"),), low=1, high=MAX_THREADS,
    metavar="N[,N...]")]  # fmt: skip
ReportSamples = Annotated[int, Opt("test images in the report's picture grid", feeds=((ReportConfig, "samples"),),
                                   low=0, high=200)]  # fmt: skip


class DataOptions(TypedDict, total=False):
    dataset: Annotated[str, Opt("named dataset: fashion-mnist, mnist or cifar10", feeds=((DataConfig, "dataset"),))]
    data: Annotated[Path | None, Opt("folder of images with one sub-folder per class, instead of --dataset",
                                     feeds=((DataConfig, "data_path"),), neutral=True)]  # fmt: skip
    data_dir: DataDir
    validation_split: Annotated[float, Opt("share of the training images held out for validation",
                                           feeds=((DataConfig, "validation_split"),), low=0, high=0.5, low_open=True,
                                           high_open=True)]  # fmt: skip
    test_split: Annotated[float, Opt("share of an image folder held out for testing",
                                     feeds=((DataConfig, "test_split"),), low=0, high=0.5, low_open=True,
                                     high_open=True)]  # fmt: skip
    limit: Annotated[
        int | None,
        Opt(
            "use at most this many training images (quick runs)",
            feeds=((DataConfig, "limit"),),
            low=20,
            hint="fewer cannot be split",
        ),
    ]
    download: Annotated[bool, Opt("let Keras download a named dataset that is not on disk",
                                  feeds=((DataConfig, "allow_download"),), flag="--download/--no-download",
                                  neutral=True)]  # fmt: skip
    cache: Annotated[Path | None, Opt(
        "image folders: keep the images decoded at the model's size in this folder, for later runs and stages "
        "(unset: a temporary folder; the images are streamed from it either way)", feeds=((DataConfig, "cache"),),
        neutral=True)]  # fmt: skip


class ModelArchitecture(TypedDict, total=False):
    model: Annotated[str, Opt("cnn, mobilenet_v2, mlp or vgg16", feeds=((TrainConfig, "model"),))]
    alpha: Annotated[float, Opt("MobileNetV2 width multiplier: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4",
                                feeds=((ModelOptions, "alpha"),))]  # fmt: skip
    input_size: Annotated[int | None, Opt("square input size in pixels (unset: the dataset's, 96 for mobilenet_v2)",
                                          feeds=((ModelOptions, "input_size"),), low=1, high=1024)]  # fmt: skip
    weights: Annotated[str, Opt("backbone weights: imagenet, none, or a local .h5/.weights.h5 file",
                                feeds=((ModelOptions, "weights"),))]  # fmt: skip
    fine_tune: Annotated[int, Opt("after training the head, unfreeze this many top layers of a pretrained backbone",
                                  feeds=((ModelOptions, "fine_tune"),), low=0, high=10_000)]  # fmt: skip
    fine_tune_epochs: Annotated[int, Opt("epochs of the fine-tuning phase", feeds=((HyperParams, "fine_tune_epochs"),),
                                         low=0, high=10_000)]  # fmt: skip
    dropout: Annotated[float, Opt("dropout before the classifier of transfer models",
                                  feeds=((ModelOptions, "dropout"),), low=0, high=1, high_open=True)]  # fmt: skip


class FitOptions(TypedDict, total=False):
    epochs: Annotated[int, Opt("maximum epochs (early stopping on validation loss keeps the best)",
                               feeds=((HyperParams, "epochs"),), low=1, high=10_000)]  # fmt: skip
    batch_size: Annotated[int | None, Opt(
        f"images per training step (unset: {DEFAULT_BATCH_SIZE}, smaller when an epoch would have fewer than "
        f"{MIN_STEPS_PER_EPOCH} steps)", feeds=((HyperParams, "batch_size"),), low=1, high=65_536)]  # fmt: skip
    learning_rate: Annotated[float | None, Opt("initial learning rate, cosine-decayed (unset: the model's)",
                                               feeds=((HyperParams, "learning_rate"),), low=0, high=1, low_open=True,
                                               high_open=True)]  # fmt: skip
    seed: Annotated[
        int,
        Opt(
            "seed for splits, shuffling and initial weights",
            feeds=((HyperParams, "seed"), (DataConfig, "seed")),
            low=0,
            high=2**32 - 1,
        ),
    ]
    patience: Annotated[int, Opt("epochs without a better validation loss before stopping",
                                 feeds=((HyperParams, "patience"),), low=1, high=10_000)]  # fmt: skip
    label_smoothing: Annotated[float, Opt(
        "label smoothing of the loss (bounds the logits, which int8 then resolves finely)",
        feeds=((HyperParams, "label_smoothing"),), low=0, high=1, high_open=True)]  # fmt: skip
    augment: Annotated[bool, Opt("random rotation, shift, shear and zoom while training", default=False,
                                 flag="--augment/--no-augment")]  # fmt: skip
    flip: Annotated[bool, Opt("random horizontal flips while training (clothing, objects; never digits or text)",
                              default=False, flag="--flip/--no-flip")]  # fmt: skip
    invert: Annotated[bool, Opt("invert colours (255 - x) before the model, in training and on the device",
                                feeds=((TrainConfig, "invert"),), flag="--invert/--no-invert")]  # fmt: skip
    resize: Annotated[Resize, Opt(
        "how an image of another aspect ratio becomes the input size, in training, evaluation and on the device: "
        "stretch, crop (centred, edges lost) or pad (fitted inside, edges repeated)",
        feeds=((TrainConfig, "resize"),))]  # fmt: skip


class DistributeOptions(TypedDict, total=False):
    distribute: Annotated[Distribute, Opt(
        "none, mirrored (every local GPU; tf.distribute.MirroredStrategy) or multi-worker (several machines, "
        "configured by TF_CONFIG; only the chief writes the model folder); --batch-size is per replica",
        feeds=((DistributeConfig, "kind"),))]  # fmt: skip
    replicas: Annotated[int | None, Opt(
        "mirrored on a machine without GPUs: this many logical CPU devices (to try the distributed path)",
        feeds=((DistributeConfig, "replicas"),), low=1, high=64)]  # fmt: skip
    mixed_precision: Annotated[bool, Opt(
        "train in mixed_float16 (float32 variables and output; for GPUs); the saved model is float32",
        feeds=((DistributeConfig, "mixed_precision"),))]  # fmt: skip


class TrainBase(DataOptions, ModelArchitecture, FitOptions, DistributeOptions, total=False):
    tensorboard: Annotated[Path | None, Opt("write TensorBoard logs to this folder",
                                            feeds=((TrainConfig, "tensorboard"),), neutral=True)]  # fmt: skip
    output: Annotated[Path | None, Opt("model folder to write (unset: models/<dataset>-<model>)",
                                       feeds=((TrainConfig, "output"),), neutral=True)]  # fmt: skip
    name: Annotated[str | None, Opt("model name (unset: the --output folder name, else <dataset>-<model>)",
                                    feeds=((TrainConfig, "name"),))]  # fmt: skip
    overwrite: Annotated[bool, Opt("replace a different model, or one trained with other settings, in the output "
                                   "folder", feeds=((TrainConfig, "overwrite"),), neutral=True)]  # fmt: skip


class TrainOptions(TrainBase, total=False):
    resume: Annotated[bool, Opt("continue an interrupted training from its last finished epoch (run does unless "
                                "--force)", feeds=((TrainConfig, "resume"),), neutral=True)]  # fmt: skip


class ConvertBase(TypedDict, total=False):
    precision: Annotated[tuple[Precision, ...], Opt(
        f"{', '.join(Precision.values())}; repeat for several", feeds=((ConvertConfig, "precisions"),),
        metavar="PRECISION")]  # fmt: skip
    io_type: Annotated[IoType, Opt("int8 model's input/output type: int8, uint8 (Edge TPU-era tools) or float32",
                                   feeds=((ConvertConfig, "io_type"),))]  # fmt: skip
    calibration_samples: Annotated[tuple[int, ...] | None, Opt(
        f"class-balanced training images to calibrate int8 on (unset: {DEFAULT_CALIBRATION_SAMPLES}, or all of them "
        "when there are fewer); several, like 100,300,1000, also sweep int8 agreement over 3 draws of each (the "
        "variants use the largest)", feeds=((ConvertConfig, "calibration_samples"),), low=MIN_CALIBRATION_SAMPLES,
        high=100_000, hint="fewer cannot calibrate int8 ranges (a few hundred is typical)",
        metavar="N[,N...]")]  # fmt: skip
    calibration: Annotated[Calibration, Opt(
        "how int8 activation ranges are estimated: min-max (widest range seen), moving-average (litert-quantizer's "
        "default) or tf (the TF converter's)", feeds=((ConvertConfig, "calibration"),))]  # fmt: skip
    min_agreement: Annotated[float, Opt(
        "mixed: percent of validation images whose class must match the reference's (with 95% confidence)",
        feeds=((MixedTarget, "min_agreement"),), low=0, high=100, low_open=True)]  # fmt: skip
    max_float_share: Annotated[float, Opt("mixed: largest size allowed, as a share of the float32 file",
                                          feeds=((MixedTarget, "max_float_share"),), low=0, high=1,
                                          low_open=True)]  # fmt: skip
    target: Annotated[tuple[Target, ...], Opt(
        "variants for: tflite (any TFLite interpreter, the model's own input) or mediapipe (MediaPipe Tasks and the "
        "Task Library on phones: RGB input, float32/uint8 I/O); repeat for both", feeds=((ConvertConfig, "targets"),),
        metavar="TARGET")]  # fmt: skip
    route: Annotated[Route, Opt("conversion route: auto, saved-model or keras-litert",
                                feeds=((ConvertConfig, "route"),))]  # fmt: skip
    target_runtime: Annotated[str | None, Opt(
        "oldest TFLite runtime every variant must run on, e.g. 2.14 for tflite-runtime (unset: the newest); a "
        "precision that cannot is skipped", feeds=((ConvertConfig, "target_runtime"),))]  # fmt: skip


class ConvertOptions(ConvertBase, total=False):
    data: Moved
    data_dir: DataDir


class DeviceOptions(TypedDict, total=False):
    device_name: Annotated[str | None, Opt("store the device's results under this name (unset: HOST as written)",
                                           feeds=((DeviceConfig, "name"),), neutral=True)]  # fmt: skip
    ssh_command: Annotated[str | None, Opt(f"ssh program and options, e.g. 'ssh -F FILE' (unset: ${SSH_COMMAND_ENV}, "
                                           "else ssh)", feeds=((DeviceConfig, "ssh_command"),),
                                           neutral=True)]  # fmt: skip
    python: Annotated[str | None, Opt("Python on the device (unset: the venv --setup made, else python3)",
                                      feeds=((DeviceConfig, "python"),), neutral=True)]  # fmt: skip
    setup: Annotated[bool, Opt("create ~/edge-pipeline/venv on the device with numpy, Pillow and --interpreter from "
                               "its package index", feeds=((DeviceConfig, "setup"),), neutral=True)]  # fmt: skip
    interpreter: Annotated[BackendName, Opt("what --setup installs: litert (ai-edge-litert) or tflite-runtime "
                                            "(legacy, numpy<2)", feeds=((DeviceConfig, "interpreter"),),
                                            neutral=True)]  # fmt: skip
    timeout: Annotated[float, Opt("seconds one command on the device may take", feeds=((DeviceConfig, "timeout"),),
                                  low=0, high=86_400, low_open=True, neutral=True)]  # fmt: skip


class EvaluateOptions(TypedDict, total=False):
    max_drop: MaxDrop
    precision: Annotated[tuple[Precision, ...] | None, Opt(
        "check only these precisions (of every target); repeat for several (unset: every variant)",
        feeds=((EvaluateConfig, "precisions"),), metavar="PRECISION")]  # fmt: skip
    threads: Annotated[int | None, Opt("interpreter threads for evaluation (unset: all cores)",
                                       feeds=((EvaluateConfig, "threads"),), low=1, high=MAX_THREADS,
                                       neutral=True)]  # fmt: skip
    data: Moved
    data_dir: DataDir


class OnDevices(TypedDict, total=False):
    on: On


class Elsewhere(OnDevices, total=False):
    emulate: Emulate


class EvaluateOnOptions(DeviceOptions, total=False):
    samples: Annotated[int, Opt("class-balanced test images sent to a device to evaluate on",
                                feeds=((DeviceEvaluateConfig, "samples"),), low=1, high=100_000)]  # fmt: skip
    data: Moved
    data_dir: DataDir


class BenchCounts(TypedDict, total=False):
    threads: Threads
    warmup: Annotated[int, Opt("untimed invokes before timing", feeds=((BenchmarkConfig, "warmup"),), low=0,
                               high=MAX_WARMUP)]  # fmt: skip
    runs: Annotated[int, Opt("timed invokes per variant and thread count", feeds=((BenchmarkConfig, "runs"),), low=1,
                             high=MAX_RUNS)]  # fmt: skip


class BenchmarkOptions(BenchCounts, total=False):
    rounds: Annotated[int, Opt("interleaved rounds the runs are split into", feeds=((BenchmarkConfig, "rounds"),),
                               low=1, high=MAX_ROUNDS)]  # fmt: skip


class BenchmarkOnOptions(BenchCounts, DeviceOptions, total=False):
    pass


class DeployOptions(DeviceOptions, total=False):
    to: Annotated[str | None, Opt("where to deploy: [USER@]HOST[:DIR] (DIR unset: ~/edge-pipeline/<model name>)",
                                  neutral=True)]  # fmt: skip


class ReportOptions(TypedDict, total=False):
    max_drop: ReportMaxDrop
    samples: ReportSamples
    device: Annotated[str | None, Opt(
        "recommend for this device of benchmark.json (its latency, its accuracy check), or an emulated CPU (pi5, pi4, "
        "pi3: its instruction counts)", feeds=((ReportConfig, "device"),))]  # fmt: skip
    as_default: Annotated[bool, Opt(
        "with --device: also make that device's pick the folder's default (what edge-runtime runs given the folder); "
        "without, the pick is recorded for that device only and deploy sends it there",
        feeds=((ReportConfig, "as_default"),))]  # fmt: skip
    data: Moved
    data_dir: DataDir


class CompareOptions(TypedDict, total=False):
    baseline: Annotated[Path | None, Opt(
        "gate: the model folder in production; exit 1 naming each regression of the folders against it",
        feeds=((CompareConfig, "baseline"),))]  # fmt: skip
    max_drop: Annotated[float, Opt(
        "gate: percentage points of accuracy the new model may lose against the baseline (a drop McNemar's test does "
        "not find significant is noise, not a regression)", feeds=((Budgets, "max_drop"),), low=0,
        high=100)]  # fmt: skip
    max_slowdown: Annotated[float, Opt("gate: percent of latency (or emulated instructions) it may add",
                                       feeds=((Budgets, "max_slowdown"),), low=0, high=1000)]  # fmt: skip
    max_growth: Annotated[float, Opt("gate: percent of file size it may add", feeds=((Budgets, "max_growth"),), low=0,
                                     high=1000)]  # fmt: skip
    allow_missing: Annotated[tuple[GateCheck, ...], Opt(
        "gate: pass even when this check cannot be made (it fails otherwise: a check that cannot be made is never "
        "a pass); repeat for several", feeds=((CompareConfig, "allow_missing"),), metavar="CHECK")]  # fmt: skip
    variant: Annotated[str | None, Opt("gate and agreement: this variant of every folder (unset: each one's "
                                       "recommended)", feeds=((CompareConfig, "variant"),))]  # fmt: skip
    threads: Annotated[int, Opt("gate: interpreter threads for the re-timing", feeds=((Budgets, "threads"),), low=1,
                                high=MAX_THREADS)]  # fmt: skip
    runs: Annotated[int, Opt("gate: timed invokes of each file", feeds=((Budgets, "runs"),), low=1, high=MAX_RUNS)]
    rounds: Annotated[int, Opt("gate: interleaved rounds the runs are split into", feeds=((Budgets, "rounds"),), low=1,
                               high=MAX_ROUNDS)]  # fmt: skip
    output: Annotated[Path, Opt("folder for comparison.md/.json/.png (models/ is ignored by git)",
                                feeds=((CompareConfig, "output"),))]  # fmt: skip
    json: Annotated[bool, Opt("print the comparison as JSON on stdout (for CI), instead of tables", default=False)]
    summary: Annotated[Path | None, Opt(
        "also append the comparison as markdown to this file (in GitHub Actions: $GITHUB_STEP_SUMMARY)",
        feeds=((CompareConfig, "summary"),))]  # fmt: skip


class RunOptions(TrainBase, ConvertBase, BenchmarkOptions, DeviceOptions, total=False):
    max_drop: MaxDrop
    samples: ReportSamples
    on: On
    emulate: Emulate
    device_samples: Annotated[int, Opt("with --on: test images sent to the device",
                                       feeds=((DeviceEvaluateConfig, "samples"),), low=1, high=100_000)]  # fmt: skip
    keep_going: Annotated[bool, Opt(
        "go on to convert, evaluate, benchmark and report even when training ended near chance level", default=False,
        flag="--continue", neutral=True)]  # fmt: skip
    force: Annotated[bool, Opt("redo every stage, also those whose record says they are up to date", default=False,
                               neutral=True)]  # fmt: skip


class ImportOptions(DataOptions, total=False):
    output: Annotated[Path | None, Opt("model folder to write (unset: models/<the source's name>)",
                                       feeds=((ImportConfig, "output"),), neutral=True)]  # fmt: skip
    name: Annotated[str | None, Opt("model name (unset: the --output folder name)", feeds=((ImportConfig, "name"),))]
    mean: Annotated[tuple[float, ...], Opt(
        "what the source expects: (pixel - mean) / std of RGB 0..255 pixels; one value or three (R,G,B), e.g. "
        "123.675,116.28,103.53 for ImageNet", feeds=((ImportConfig, "mean"),), metavar="M[,M,M]")]  # fmt: skip
    std: Annotated[tuple[float, ...], Opt("see --mean; 0 and 255 for [0, 1], 127.5 and 127.5 for [-1, 1]",
                                          feeds=((ImportConfig, "std"),), low=0, low_open=True,
                                          metavar="S[,S,S]")]  # fmt: skip
    bgr: Annotated[bool, Opt("the source expects BGR channel order (Caffe-style); Keras and SavedModel sources",
                             feeds=((ImportConfig, "bgr"),))]  # fmt: skip
    output_index: Annotated[int | None, Opt(
        "which output holds the classes, by the source's order (unset: the one as wide as there are labels)",
        feeds=((ImportConfig, "output_index"),), low=0, high=1000)]  # fmt: skip
    labels: Annotated[Path | None, Opt("labels in output order, one a line (unset: the data's class names, sorted)",
                                       feeds=((ImportConfig, "labels"),))]  # fmt: skip
    input_size: Annotated[int | None, Opt("square input size for a source that takes any height and width",
                                          feeds=((ImportConfig, "input_size"),), low=1, high=8192)]  # fmt: skip
    custom_objects: Annotated[Path | None, Opt(
        "a .py file defining the custom layers the source names: it is RUN, so only a file you trust",
        feeds=((ImportConfig, "custom_objects"),))]  # fmt: skip
    seed: Annotated[int, Opt("seed of the splits", feeds=((DataConfig, "seed"),), low=0, high=2**32 - 1)]
    overwrite: Annotated[bool, Opt("replace the model in the output folder", feeds=((ImportConfig, "overwrite"),),
                                   neutral=True)]  # fmt: skip
    keep_going: Annotated[bool, Opt("import a source whose own accuracy is near chance or collapsed to one class",
                                    feeds=((ImportConfig, "keep_going"),), flag="--continue")]  # fmt: skip


# The options of each API function; its positional parameters (MODEL_DIR, FOLDERS..., HOSTS...) are its own.
FUNCTIONS: dict[str, type] = {
    "train": TrainOptions,
    "convert": ConvertOptions,
    "evaluate": EvaluateOptions,
    "evaluate_on": EvaluateOnOptions,
    "benchmark": BenchmarkOptions,
    "benchmark_on": BenchmarkOnOptions,
    "deploy": DeployOptions,
    "report": ReportOptions,
    "compare": CompareOptions,
    "run": RunOptions,
    "import_model": ImportOptions,
}
# The options of each command of the command line: its function's, and for evaluate and benchmark those of the
# same measurement on a device (`--on HOST`) or on an emulated Pi (`--emulate CPU`).
COMMANDS: dict[str, tuple[type, ...]] = {
    "train": (TrainOptions,),
    "convert": (ConvertOptions,),
    "evaluate": (EvaluateOptions, OnDevices, EvaluateOnOptions),
    "benchmark": (BenchmarkOptions, Elsewhere, BenchmarkOnOptions),
    "deploy": (DeployOptions,),
    "report": (ReportOptions,),
    "compare": (CompareOptions,),
    "run": (RunOptions,),
    "import": (ImportOptions,),
}

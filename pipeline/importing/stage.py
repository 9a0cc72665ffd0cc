"""Import a classifier made elsewhere and write an ordinary model folder (`edge-pipeline import`).

The source is measured before it is trusted (its own framework's top-1 on the test split, recorded and shown
first; near chance or collapsed to one class is refused), its preprocessing is stated once (`--mean/--std/--bgr`)
and put inside the graph where there is one to edit (Keras, SavedModel) or recorded in metadata.json for every stage
to apply (a .tflite), its class output chosen and given a softmax, and its provenance recorded. Convert, evaluate,
benchmark, report, deploy, compare and run then take the folder as they take one `train` wrote.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec, SourceRecord, read_labels
from edge_runtime.normalization import Values, shown

from ..data.dataset import DataConfig, Dataset, load_dataset, native_format
from ..data.image_folders import skipped_line
from ..errors import SourceError, UsageError
from ..folder import FolderStore, model_identity
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from . import kinds
from . import measure as measuring
from .graphs import Preprocessing
from .sources import Source, identify

IMPORTED = "imported"  # the `training.model` of an imported folder


@dataclass(frozen=True)
class ImportConfig:
    """What to import, with which data, and what the source expects (values as `pipeline.surface.options` parsed)."""

    source: Path
    data: DataConfig = field(default_factory=DataConfig)
    output: Path | None = None  # None: models/<the source's name>
    name: str | None = None
    mean: tuple[float, ...] = (0.0,)  # what the source expects of RGB 0..255 pixels: (pixel - mean) / std
    std: tuple[float, ...] = (1.0,)
    bgr: bool = False
    output_index: int | None = None
    labels: Path | None = None
    input_size: int | None = None
    custom_objects: Path | None = None
    overwrite: bool = False
    keep_going: bool = False

    @property
    def folder(self) -> Path:
        return Path(self.output) if self.output is not None else Path("models") / Path(self.source).stem

    @property
    def model_name(self) -> str:
        return self.name or self.folder.name

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(_values(self.mean, "--mean"), _values(self.std, "--std"), self.bgr)


def _values(given: tuple[float, ...], name: str) -> Values:
    if len(given) not in (1, 3):
        raise UsageError(f"{name} wants one number or three (R,G,B), got {len(given)}")
    if name == "--std" and not all(v > 0 for v in given):
        raise UsageError(f"--std must be above 0, got {','.join(f'{v:g}' for v in given)}")
    return given[0] if len(given) == 1 else given


@dataclass(repr=False)
class ImportResult(Shown):
    """What was imported, how well the source itself does, and the folder written; prints as a table."""

    folder: Path
    name: str
    source: SourceRecord
    labels: list[str]
    input: InputSpec
    reference_agreement: float  # percent of test images where the folder's reference agrees with the source
    sizes: dict[str, int]
    seconds: float = 0.0

    @property
    def test_accuracy(self) -> float:
        return float(self.source.accuracy or 0.0)

    def summary(self) -> str:
        return f"imported {self.source.file} into {self.folder}: {self.test_accuracy:.2%} top-1 on its test split"

    def table(self) -> Table:
        source, spec = self.source, self.input
        head = f"output {source.output_index} of {source.outputs}" if source.outputs > 1 else "its output"
        rows = [
            ["source's own accuracy", f"{self.test_accuracy:.2%} on {source.test_images:,} test images"],
            ["source", f"{source.file} ({source.kind}" + (f", {source.framework} {source.version})"
                                                          if source.version else ")")],
            ["preprocessing", _preprocessing(source, spec)],
            ["classes", f"{len(self.labels)} ({head}" + (", softmax added)" if source.activation == "logits" else ")")],
            ["reference", f"{source.reference}: agrees with the source on {self.reference_agreement:.2f}%"],
            ["written", f"{self.folder}/ ({source.reference}, labels.txt, metadata.json)"],
        ]  # fmt: skip
        return Table(f"imported {self.name}", ["", ""], rows, header=False)


def _preprocessing(source: SourceRecord, spec: InputSpec) -> str:
    if not source.bgr and (source.mean, source.std) in ((0.0, 1.0), ((0.0,), (1.0,))):
        return "none: the source takes raw pixels (0..255)"
    stated = f"(pixel - {shown(source.mean)}) / {shown(source.std)}" + (" of BGR" if source.bgr else "")
    return stated + (", applied by every stage (the .tflite is not edited)" if not spec.raw else ", inside the graph")


def import_model(config: ImportConfig, reporter: Reporter | None = None) -> ImportResult:
    """Measure the source, then write its model folder (committed together; nothing is left on a refusal)."""
    reporter = reporter or SilentReporter()
    began = time.perf_counter()
    pre = config.preprocessing
    source = identify(config.source)
    if source.is_tflite and pre.bgr:
        raise UsageError("--bgr: a .tflite source's graph is not edited; export it taking RGB, or import its model")
    store = FolderStore(config.folder)
    _outside(store.path, source.path, config.labels)

    def writable() -> None:
        store.check_writable_for(model_identity(IMPORTED, config.data.to_record()), config.overwrite, same_model=False)

    writable()
    loaded = kinds.load(source, config.custom_objects)
    height, width, channels = _shape(loaded, config)
    spec = InputSpec(height, width, channels, "grayscale" if channels == 1 else "rgb")
    if source.is_tflite:
        spec = InputSpec(height, width, channels, spec.color, mean=pre.mean, std=pre.std)
    dataset, labels = _data(config, spec, reporter)
    output = kinds.choose_output(loaded.output_widths, len(labels), config.output_index, source.path)
    with reporter.task(f"measuring {source.path.name} on the test split", total=None):
        measured = measuring.measure(loaded.scorer(pre, output), dataset.test.images, dataset.test.labels, spec)
    reporter.status(
        f"{source.path.name}: {measured.accuracy:.2%} top-1 on {len(dataset.test):,} test images (its own framework)"
        + ("; its output is logits, a softmax is added" if measured.logits else "")
    )
    if not config.keep_going:
        with reporter.task("trying the usual input scales beside the stated one", total=None):
            test = dataset.test
            measuring.refuse_a_wrong_scale(lambda other: loaded.scorer(other, output), pre, measured, test.images,
                                           test.labels, spec, len(labels), str(source.path))  # fmt: skip
        measuring.refuse_untrustworthy(measured, dataset.test.labels, labels, str(source.path))
    record = _record(source, config, pre, loaded, output, measured)
    from .writing import write_folder

    with tempfile.TemporaryDirectory(prefix="edge-pipeline-import-") as workdir:
        made = loaded.reference((height, width, channels), pre, output, measured.logits and not source.is_tflite,
                                Path(workdir))  # fmt: skip
        agreement = _agreement(made, record, spec, dataset, measured)
        with store.writing("import", create=True):
            writable()  # again, under the lock: another import may have written it since (both exited 0 before)
            write_folder(store, config, record, made, spec, labels, dataset)
    result = ImportResult(store.path, config.model_name, record, labels, spec, agreement, dataset.sizes())
    result.seconds = time.perf_counter() - began
    return result


def _outside(folder: Path, source: Path, labels: Path | None) -> None:
    """The source and the labels file are read from outside --output: writing the folder replaces its files (a
    model.keras imported into its own folder with --overwrite was lost)."""
    for given, what in ((source, "the source"), (labels, "--labels")):
        if given is not None and Path(given).resolve().is_relative_to(folder.resolve()):
            raise UsageError(f"{given}: {what} is inside --output {folder}, whose files import replaces; move it "
                             "out, or choose another --output")  # fmt: skip


def _shape(loaded: kinds.Loaded, config: ImportConfig) -> tuple[int, int, int]:
    from .sources import image_input

    return image_input(loaded.input_shapes, config.input_size, loaded.source.path)


def checked_labels(config: ImportConfig, classes: list[str]) -> list[str]:
    """The source's labels in output order (--labels, else the data's classes), the same names as the data's."""
    labels = read_labels(config.labels) if config.labels is not None else list(classes)
    twice = sorted(name for name, count in Counter(labels).items() if count > 1)  # 100,000 labels: linear
    if twice:
        raise UsageError(f"--labels {config.labels}: {twice[:3]} appear more than once; one line per output")
    if sorted(labels) != sorted(classes):
        missing = sorted(set(classes) - set(labels)) or sorted(set(labels) - set(classes))
        raise UsageError(
            f"--labels {config.labels}: {len(labels)} labels, the data has {len(classes)} classes; they must be the "
            f"same names, one a line in output order (e.g. {missing[:3]} differ)"
        )
    if labels != classes and config.data.data_path is None:
        raise UsageError("--labels: a named dataset's classes come in its own order; the model's outputs must too")
    return labels


def _data(config: ImportConfig, spec: InputSpec, reporter: Reporter) -> tuple[Dataset, list[str]]:
    """The data split as `train` splits it, its labels in the source's output order (--labels), remapped."""
    _, classes = native_format(config.data)
    labels = checked_labels(config, classes)
    with reporter.task(f"loading {config.data.name}") as task:
        dataset = load_dataset(config.data, spec, lambda done, total: task.update(done, total))
    if dataset.skipped:
        reporter.status(skipped_line(dataset.skipped, Path(dataset.source)))
    order = np.asarray([labels.index(name) for name in classes], dtype=np.int64)
    for split in (dataset.train, dataset.validation, dataset.test):
        split.labels = order[split.labels]
    if dataset.files is not None:
        dataset.files["classes"] = labels  # split.json: every stage reads the classes in output order
    dataset.labels = labels
    reporter.status(f"data: {dataset.name}: {len(dataset.train)} train (calibration), {len(dataset.validation)} "
                    f"validation, {len(dataset.test)} test")  # fmt: skip
    return dataset, labels


def _record(source: Source, config: ImportConfig, pre: Preprocessing, loaded: kinds.Loaded, output: int,
            measured: Any) -> SourceRecord:  # fmt: skip
    reference = "model.keras" if source.kind in ("keras", "h5") else (
        "model_int8.tflite" if source.kind == "tflite-quantized" else "model_float32.tflite")  # fmt: skip
    return SourceRecord(
        kind=source.kind, file=source.path.name, sha256=source.sha256, framework=source.framework,
        version=source.version, reference=reference, mean=pre.mean, std=pre.std, bgr=pre.bgr, output_index=output,
        outputs=len(loaded.output_widths), activation="logits" if measured.logits else "softmax",
        accuracy=measured.accuracy, test_images=len(measured.top1),
    )  # fmt: skip


def _agreement(made: Any, record: SourceRecord, spec: InputSpec, dataset: Dataset, measured: Any) -> float:
    """Percent of test images where the folder's reference (what variants are measured against) agrees with the
    source: the Keras model with the preprocessing inside, or the SavedModel's float32 .tflite."""
    if record.kind.startswith("tflite"):
        return 100.0  # the file itself
    if record.kind == "saved-model":
        from edge_runtime.backends import load_interpreter

        interpreter, _ = load_interpreter(Path(record.file), content=made)
        score = measuring.tflite_scorer(interpreter, Preprocessing())
    else:
        score = measuring.keras_scorer(made, Preprocessing(), 0)
    found = measuring.measure(score, dataset.test.images, dataset.test.labels, spec)
    agreement = 100.0 * float((found.top1 == measured.top1).mean()) if len(found.top1) else 100.0
    if agreement < 99.0:
        raise SourceError(
            f"{record.file}: the folder's model agrees with the source on only {agreement:.2f}% of the test images; "
            "not written (report this with the model's layers)"
        )
    return agreement

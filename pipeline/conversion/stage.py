"""Convert a model folder's Keras model to TFLite in every precision (`edge-pipeline convert`).

The conversion itself is `pipeline.conversion.converter` (no folder: recipes and a Converter); this stage
calibrates on the folder's training split, stages each variant in the folder's transaction, checks it
loads in edge_runtime, and records it (route, fallbacks, minimum runtime, operator versions).
"""

from __future__ import annotations

import importlib.metadata
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import load_interpreter
from edge_runtime.errors import ModelError
from edge_runtime.folder.reader import TARGET_PRECISIONS, InputSpec, split_variant, variant_filename, variant_name
from edge_runtime.tflite.requirements import ModelRequirements, parse_version

from ..choices import Calibration, IoType, Precision, Route, Target
from ..data.dataset import DataConfig, load_dataset
from ..errors import ConversionError, DataError, UsageError
from ..folder import (
    MB,
    QUANTIZATION_JSON,
    VARIANTS,
    FolderStore,
    Metadata,
    TensorInfo,
    Transaction,
    VariantInfo,
)
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from .converter import COMPATIBILITY_STEPS, DEFAULT_CALIBRATION, Conversion, Converter, Recipe
from .diagnostics import QuantData, QuantizationReport, measure
from .metadata_writer import ModelCard, embed
from .mixed import MixedTarget, NoCandidate
from .phone import phone_model, phone_pixels, phone_spec, raw_uint8_input

MIN_CALIBRATION_SAMPLES = 10
# int8 ranges are calibrated on this many class-balanced training images by default, or on all of
# them when there are fewer (README's `--limit 200` quick runs have 179).
DEFAULT_CALIBRATION_SAMPLES = 300


@dataclass(frozen=True)
class ConvertConfig:
    """Which variants to make from a model folder, and how (values as `pipeline.surface.options` parsed them)."""

    folder: Path
    precisions: tuple[Precision, ...] = tuple(Precision)
    io_type: IoType = IoType.INT8  # the int8 variant's input/output type; uint8 is for Edge TPU-era tools
    # None: DEFAULT_CALIBRATION_SAMPLES, or every training image if fewer; several counts: a sweep, the
    # variants calibrated on the largest
    calibration_samples: tuple[int, ...] | None = None
    calibration: Calibration = DEFAULT_CALIBRATION
    route: Route = Route.AUTO
    data_path: Path | None = None  # where the training data is now, if it moved
    data_dir: Path | None = None
    target_runtime: str | None = None  # oldest TFLite runtime every variant must run on; None: the newest
    target: MixedTarget = field(default_factory=MixedTarget)  # what the mixed variant must meet
    targets: tuple[Target, ...] = (Target.TFLITE,)  # variant families to write (mediapipe: for phones)

    def __post_init__(self) -> None:
        if self.target_runtime is not None and len(parse_version(self.target_runtime)) < 2:
            raise UsageError(f"--target-runtime {self.target_runtime!r} is not a version like 2.14")

    @property
    def needs_data(self) -> bool:
        return any(Recipe.for_precision(p).needs_calibration for p in self.precisions)


@dataclass(repr=False)
class ConvertResult(Shown):
    """The variants written, with the route each took; prints as a table of sizes, tensors and runtimes."""

    folder: Path
    variants: list[VariantInfo]
    fallbacks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # precisions that cannot run on --target-runtime, with why
    quantization: QuantizationReport | None = None

    def summary(self) -> str:
        return f"converted {self.folder}: {', '.join(v.precision for v in self.variants)} in {self.seconds:.1f} s"

    def table(self) -> Table:
        # each family against its own float32 (mediapipe-int8 against mediapipe-float32), else the plain one
        floats = {split_variant(v.precision)[0]: v.bytes for v in self.variants if v.precision.endswith("float32")}

        def tensor(info: Any) -> str:
            return info.dtype + (f" (scale {info.scale:.4g}, zp {info.zero_point})" if info.scale else "")

        rows = []
        for v in self.variants:
            base = floats.get(split_variant(v.precision)[0], floats.get("tflite"))
            ratio = f"{v.bytes / base:.2f}x" if base else "-"
            cells = [f"{v.bytes / 1024:,.1f}", ratio, tensor(v.input), tensor(v.output), v.min_runtime or "?", v.route]
            rows.append([v.precision, *cells])
        return Table(
            f"converted {self.folder} in {self.seconds:.1f} s (files model_<variant>.tflite)",
            ["variant", "size KB", "x float32", "input", "output", "min runtime", "route"],
            rows,
            list(self.skipped),
        )


def conversion_data(metadata: Metadata, config: ConvertConfig, recorded: dict[str, Any] | None = None) -> QuantData:
    """The training split to calibrate on, validation images for mixed, the test split to report on."""
    try:
        data = DataConfig.from_record(metadata.dataset, config.data_path, config.data_dir)
    except UsageError as error:
        raise DataError(f"int8 calibration needs the training data: {error}") from None
    try:
        dataset = load_dataset(data, metadata.input, recorded=recorded)
    except (DataError, UsageError) as error:
        raise DataError(
            f"int8 calibration needs the training data, which is not available: {error} "
            "(pass --data or --data-dir to say where it is now)"
        ) from None
    if len(dataset.train) == 0:
        raise DataError(f"{data.name}: the training split is empty, so there is nothing to calibrate int8 on")
    available = len(dataset.train)
    too_many = [count for count in config.calibration_samples or () if count > available]
    if too_many:
        raise DataError(
            f"--calibration-samples {too_many[0]} is more than the {available} training images; "
            f"use {available} or fewer"
        )
    counts = tuple(sorted(config.calibration_samples or (min(DEFAULT_CALIBRATION_SAMPLES, available),)))
    return QuantData(dataset, metadata.input, data.seed, counts, config.target.selection_samples)


@dataclass
class Family:
    """One target's variants: the model it converts (phones: behind an RGB input), its calibration, its card."""

    target: Target
    converter: Converter
    calibration: np.ndarray | None
    card: ModelCard
    image: InputSpec | None = None  # the input a device feeds when it is not the folder's

    def recipe(self, precision: Precision, config: ConvertConfig) -> Recipe:
        if self.target is Target.MEDIAPIPE:  # uint8 I/O: the TF converter, with its own calibration
            return Recipe.for_precision(precision, IoType.UINT8, Calibration.TF)
        return Recipe.for_precision(precision, config.io_type, config.calibration, config.target)


def _card(metadata: Metadata, target: Target, spec: InputSpec) -> ModelCard:
    training, dataset = metadata.training, metadata.dataset
    what = f"{training.get('model', 'image')} classifier of {len(metadata.labels)} classes"
    source = dataset.get("name") or dataset.get("path") or "its data"
    description = f"{what}, trained by edge-pipeline on {source}; takes {spec.color} pixels (0..255) as they are"
    if metadata.source is not None:
        from ..importing.writing import card_description

        description = card_description(metadata.source, metadata.labels, str(source), spec)
    return ModelCard(metadata.name, description, metadata.created_at, tuple(metadata.labels), spec)


def file_families(
    store: FolderStore, metadata: Metadata, config: ConvertConfig, data: QuantData | None, workdir: Path,
    result: ConvertResult, reporter: Reporter,
) -> list[Family]:  # fmt: skip
    """An imported .tflite's one family: its file is what litert-quantizer starts from (phones: not from a file)."""
    from ..measure.reference import reference_file
    from .from_file import FileConverter, quantized_source

    if Target.MEDIAPIPE in config.targets:
        result.skipped.append(
            "mediapipe: skipped, its variants are made by editing a Keras graph, and this folder was imported from a "
            ".tflite; import the Keras model or SavedModel to make them"
        )
        reporter.status(result.skipped[-1])
    content = store.verified(reference_file(metadata), metadata).read_bytes()
    selection = data.selection if data is not None and Precision.MIXED in config.precisions else None
    converter = FileConverter(content, quantized_source(metadata), workdir, selection, reporter)
    calibration = data.calibration if data is not None else None
    return [Family(Target.TFLITE, converter, calibration, _card(metadata, Target.TFLITE, metadata.input))]


def families(
    model: Any, metadata: Metadata, config: ConvertConfig, data: QuantData | None, workdir: Path, reporter: Reporter
) -> list[Family]:
    """A Family per --target: plain TFLite converts the model itself; mediapipe its RGB phone model."""
    made = []
    calibration = data.calibration if data is not None else None
    for target in config.targets:
        where = workdir / str(target)
        where.mkdir()
        if target is Target.MEDIAPIPE:
            image = phone_spec(metadata.input)
            phone_calibration = phone_pixels(calibration, metadata.input) if calibration is not None else None
            converter = Converter(phone_model(model, metadata.input), where, None, reporter)
            made.append(Family(target, converter, phone_calibration, _card(metadata, target, image), image))
            continue
        selection = data.selection if data is not None and Precision.MIXED in config.precisions else None
        converter = Converter(model, where, selection, reporter)
        made.append(Family(target, converter, calibration, _card(metadata, target, metadata.input)))
    return made


def _targets(interpreter: Any) -> list[str]:
    """Where a file runs as it is: any TFLite interpreter; MediaPipe too with RGB in and float32/uint8 I/O."""
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    phone_types = (np.float32, np.uint8)
    phone = given["shape"][-1] == 3 and np.dtype(given["dtype"]) in phone_types
    return [Target.TFLITE, Target.MEDIAPIPE] if phone and np.dtype(taken["dtype"]) in phone_types else [Target.TFLITE]


def _variant_info(
    converted: Conversion,
    name: str,
    staged: Path,
    record: dict[str, Any],
    family: Family,
    seconds: float,
    images: int | None,
) -> VariantInfo:
    """metadata.json's record of a staged variant; `images`: how many it was calibrated on."""
    try:
        interpreter, _ = load_interpreter(staged)
    except ModelError as error:
        scale = "scales an input by" in str(error)  # measured: logits spanning ~1,700 (a [-1, 1] model fed 0..255)
        hint = "; logits far beyond a trained model's (an input on the wrong scale?) do this" if scale else ""
        raise ConversionError(  # what could crash an interpreter is refused, a converter's output too
            f"{name}: the converted model does not load in edge_runtime: {error}{hint}; other precisions "
            "convert without it (--precision)"
        ) from None
    recipe = converted.recipe
    calibrated = recipe.needs_calibration
    return VariantInfo(
        precision=name,
        file=variant_filename(name),
        bytes=record["bytes"],
        sha256=record["sha256"],
        input=TensorInfo.of(interpreter.get_input_details()[0]),
        output=TensorInfo.of(interpreter.get_output_details()[0]),
        route=converted.route,
        io_type=str(recipe.io_type) if recipe.precision is Precision.INT8 else None,
        calibration_samples=images if calibrated else None,
        seconds=round(seconds, 2),
        min_runtime=converted.requirements.min_runtime,
        ops=converted.requirements.ops,
        settings=dict(recipe.flags) or None,
        calibration=str(recipe.calibrated_by) if calibrated else None,
        mixed={k: v for k, v in converted.details.items() if k != "tried"} or None,
        targets=[str(t) for t in _targets(interpreter)],
        image=family.image,
    )


def _too_new(precision: str, needs: ModelRequirements, target: str) -> str:
    tried = " even with per-tensor weights" if precision in COMPATIBILITY_STEPS else ""
    return (
        f"{precision}: skipped, it needs TFLite runtime {needs.min_runtime}{tried} "
        f"(ops {', '.join(f'{op} v{v}' for op, v in needs.ops.items())}), newer than --target-runtime {target}"
    )


def _stage_one(
    family: Family, precision: Precision, config: ConvertConfig, tx: Transaction, reporter: Reporter
) -> tuple[Conversion, VariantInfo | None]:
    """Convert one precision of a family, embed its TFLite metadata and stage it; None when too new for the runtime."""
    began = time.perf_counter()
    name = variant_name(precision, family.target)
    recipe = family.recipe(precision, config)
    converted = family.converter.convert_for_runtime(recipe, config.route, family.calibration, config.target_runtime)
    if converted.failures:
        reporter.status(f"{name}: {converted.failures[0]}; fell back to {converted.route}")
    if config.target_runtime and not converted.requirements.runs_on(config.target_runtime):
        tx.remove(variant_filename(name))  # an older file of this precision would not run there either
        return converted, None
    content = raw_uint8_input(converted.content, name) if family.target is Target.MEDIAPIPE else converted.content
    converted = replace(converted, content=embed(content, family.card))
    staged = tx.write_bytes(variant_filename(name), converted.content)
    elapsed = time.perf_counter() - began
    images = len(family.calibration) if family.calibration is not None else None
    return converted, _variant_info(converted, name, staged, tx.record(variant_filename(name)), family, elapsed, images)


def _from_quantized(config: ConvertConfig, noted: ConvertResult, reporter: Reporter) -> ConvertConfig:
    """An already quantized source gives its int8 variant only: the rest is said in one line."""
    others = [str(p) for p in config.precisions if p is not Precision.INT8]
    if others:
        noted.skipped.append(
            f"{', '.join(others)}: cannot be made from an already quantized (int8) source; import the float32 .tflite "
            "or the model it came from to make them"
        )
        reporter.status(noted.skipped[-1])
    return replace(config, precisions=tuple(p for p in config.precisions if p is Precision.INT8))


def _kept(family: Family) -> tuple[str, ...]:
    """Variants an imported folder holds as its reference: a refusal to remake one keeps the file."""
    from .from_file import FileConverter

    return (str(Precision.INT8),) if isinstance(family.converter, FileConverter) and family.converter.quantized else ()


def _plan(families: list[Family], config: ConvertConfig) -> list[tuple[Family, Precision]]:
    return [(f, p) for f in families for p in config.precisions if p in TARGET_PRECISIONS[f.target]]


def _stage_all(
    families: list[Family], config: ConvertConfig, tx: Transaction, reporter: Reporter
) -> tuple[ConvertResult, dict[str, Conversion]]:
    result, made, plan = ConvertResult(config.folder, []), {}, _plan(families, config)
    with reporter.task("converting", total=len(plan)) as task:
        for done, (family, precision) in enumerate(plan):
            name = variant_name(precision, family.target)
            task.update(done, note=name)
            try:
                converted, variant = _stage_one(family, precision, config, tx, reporter)
            except NoCandidate as error:  # and CannotMake: a precision a .tflite source cannot give
                if name not in _kept(family):
                    tx.remove(variant_filename(name))
                result.skipped.append(f"{name}: skipped, {error}")
                reporter.status(result.skipped[-1])
                continue
            if converted.failures:
                result.fallbacks.append(f"{name}: {converted.failures[0]}; used {converted.route}")
            if variant is None:
                result.skipped.append(_too_new(name, converted.requirements, str(config.target_runtime)))
                reporter.status(result.skipped[-1])
            else:
                result.variants.append(variant)
                made[name] = converted
            task.update(done + 1, note=name)
    return result, made


def convert(config: ConvertConfig, reporter: Reporter | None = None) -> ConvertResult:
    """Write `model_<variant>.tflite` for each precision of each target and record them in metadata.json."""
    reporter = reporter or SilentReporter()
    folder = FolderStore(config.folder)
    with folder.writing("convert"):
        return _convert(folder, config, reporter)


def _convert(folder: FolderStore, config: ConvertConfig, reporter: Reporter) -> ConvertResult:
    start = time.perf_counter()
    metadata = folder.load()
    from ..measure.reference import is_file_reference, reference_file
    from .from_file import quantized_source

    reference = folder.verified(reference_file(metadata), metadata)
    steps = sum(len(TARGET_PRECISIONS[t]) for t in config.targets)
    folder.check_room(int(reference.stat().st_size * 1.3 * steps) + 8 * MB, "convert")
    data = None
    if config.needs_data and not quantized_source(metadata):
        data = conversion_data(metadata, config, folder.recorded_split(metadata))
        reporter.status(
            f"int8: calibrating ranges ({config.calibration}) on {len(data.calibration)} class-balanced training images"
        )

    with tempfile.TemporaryDirectory(prefix="edge-pipeline-convert-") as workdir, folder.transaction() as tx:
        noted = ConvertResult(folder.path, [])
        if quantized_source(metadata):
            config = _from_quantized(config, noted, reporter)
        if is_file_reference(metadata):
            made_for = file_families(folder, metadata, config, data, Path(workdir), noted, reporter)
        else:
            import keras

            model = keras.models.load_model(reference, compile=False)
            made_for = families(model, metadata, config, data, Path(workdir), reporter)
        result, made = _stage_all(made_for, config, tx, reporter)
        result.folder, result.skipped = folder.path, [*noted.skipped, *result.skipped]
        plain = made_for[0].converter if made_for[0].target is Target.TFLITE else None
        if data is not None and plain is not None and made.keys() & {Precision.INT8, Precision.MIXED}:
            int8 = Recipe.for_precision(Precision.INT8, config.io_type, config.calibration)
            result.quantization, mixed_agreement = measure(plain, int8, config.route, data, made, reporter)
            result.variants = [_with_test_agreement(v, mixed_agreement) for v in result.variants]
            tx.write_json(QUANTIZATION_JSON, result.quantization.to_dict())
            metadata.files[QUANTIZATION_JSON] = tx.record(QUANTIZATION_JSON)
        for name in (variant_name(p, f.target) for f, p in _plan(made_for, config)):
            metadata.variants.pop(name, None)
        metadata.variants.update({v.precision: v for v in result.variants})
        metadata.conversion = _conversion_record(metadata, config, result)
        metadata.variants = {n: metadata.variants[n] for n in VARIANTS if n in metadata.variants}
        tx.commit(metadata)
    result.seconds = time.perf_counter() - start
    return result


def _with_test_agreement(variant: VariantInfo, agreement: float | None) -> VariantInfo:
    """The mixed record with its agreement on the test split (chosen on validation, reported on test)."""
    if variant.precision != Precision.MIXED or agreement is None:
        return variant
    return replace(variant, mixed={**(variant.mixed or {}), "test_agreement": agreement})


def _conversion_record(metadata: Metadata, config: ConvertConfig, result: ConvertResult) -> dict[str, Any]:
    return {
        "routes": {v.precision: v.route for v in metadata.variants.values()},
        "fallbacks": result.fallbacks,
        "target_runtime": config.target_runtime,
        "skipped": result.skipped,
        "calibration": str(config.calibration),
        "targets": [str(t) for t in config.targets],
        "versions": {name: _version(name) for name in ("tensorflow", "keras", "ai-edge-litert", "litert-quantizer")},
    }


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"

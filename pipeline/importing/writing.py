"""An imported model's folder, committed in one transaction: the reference model, labels, the split, metadata.json
with the source's provenance (and, for a .tflite, the variant it is: model_float32 or model_int8)."""

from __future__ import annotations

from typing import Any

from edge_runtime.backends import load_interpreter
from edge_runtime.folder.reader import InputSpec, SourceRecord, variant_filename
from edge_runtime.tflite.requirements import read_requirements

from ..data.dataset import Dataset
from ..data.statistics import image_stats
from ..folder import (
    CHECKPOINT_FILE,
    DERIVED_FILES,
    KERAS_FILE,
    LABELS_FILE,
    SPLIT_JSON,
    FolderStore,
    TensorInfo,
    VariantInfo,
    new_metadata,
)

ROUTE = "imported"  # a variant that is the source itself (with the folder's TFLite metadata embedded)


def card_description(source: SourceRecord, labels: list[str], data: str, spec: InputSpec) -> str:
    """The model card's line: who made the model, and what measured it."""
    from edge_runtime.normalization import shown

    taken = "pixels (0..255) as they are" if spec.raw else f"(pixel - {shown(spec.mean)}) / {shown(spec.std)}"
    return (
        f"image classifier of {len(labels)} classes, imported from {source.file} ({source.framework} "
        f"{source.version}".rstrip()
        + f") and measured by edge-pipeline on {data}; takes {spec.color} {taken}"
    )


def _variant(name: str, staged: Any, record: dict[str, Any], content: bytes) -> VariantInfo:
    interpreter, _ = load_interpreter(staged, content=content)
    needs = read_requirements(content, name)
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    return VariantInfo(
        precision=name, file=variant_filename(name), bytes=record["bytes"], sha256=record["sha256"],
        input=TensorInfo.of(given), output=TensorInfo.of(taken), route=ROUTE,
        io_type=TensorInfo.of(given).dtype if name == "int8" else None, min_runtime=needs.min_runtime, ops=needs.ops,
        targets=["tflite"],
    )  # fmt: skip


def _dataset_record(config: Any, dataset: Dataset, spec: InputSpec) -> dict[str, Any]:
    from ..data.dataset import native_format

    native, _ = native_format(config.data)
    return {
        **config.data.to_record(),
        "source": dataset.source,
        "sizes": dataset.sizes(),
        "skipped": len(dataset.skipped),
        **({"image_stats": image_stats(dataset, spec, native)} if len(dataset.train) else {}),
    }


def _training(source: SourceRecord) -> dict[str, Any]:
    """metadata.json's `training` of an imported model: nothing trained; where it came from, what it scored."""
    made_by = f"{source.framework} {source.version}".strip()
    return {
        "model": "imported",
        "imported_from": f"{source.file} ({source.kind}" + (f", {made_by})" if source.version else ")"),
        "reference": "Keras" if source.reference == KERAS_FILE else f"source ({source.kind})",
        "test_accuracy": source.accuracy,
    }


def write_folder(
    store: FolderStore, config: Any, source: SourceRecord, made: Any, spec: InputSpec, labels: list[str],
    dataset: Dataset,
) -> None:  # fmt: skip
    """Commit the folder: the reference (model.keras, or the .tflite with its card), labels, split.json, metadata."""
    from ..conversion.metadata_writer import ModelCard, embed

    metadata = new_metadata(
        name=config.model_name, labels=labels, input=spec, dataset=_dataset_record(config, dataset, spec),
        training=_training(source), source=source,
        activation="logits" if source.activation == "logits" and source.kind.startswith("tflite") else "softmax",
    )  # fmt: skip
    with store.transaction() as tx:
        for stale in (*DERIVED_FILES, SPLIT_JSON, CHECKPOINT_FILE, KERAS_FILE):
            tx.remove(stale)
        if source.reference == KERAS_FILE:
            made.save(tx.path(KERAS_FILE))
            metadata.files[KERAS_FILE] = tx.record(KERAS_FILE)
            metadata.training["parameters"] = int(made.count_params())
        else:
            name = source.reference.removeprefix("model_").removesuffix(".tflite")
            description = card_description(source, labels, dataset.name, spec)
            card = ModelCard(config.model_name, description, metadata.created_at, tuple(labels), spec)
            content = embed(made, card)
            staged = tx.write_bytes(source.reference, content)
            metadata.variants[name] = _variant(name, staged, tx.record(source.reference), content)
        tx.write_text(LABELS_FILE, "\n".join(labels) + "\n")
        metadata.files[LABELS_FILE] = tx.record(LABELS_FILE)
        if dataset.files is not None:
            tx.write_json(SPLIT_JSON, dataset.files)
            metadata.files[SPLIT_JSON] = tx.record(SPLIT_JSON)
        tx.commit(metadata)

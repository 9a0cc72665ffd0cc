"""Which model file runs: a .tflite file, or the best variant of a model folder this interpreter can run.

The chosen file is read once, checked (its FlatBuffer structure; its sha256 when metadata.json describes
it) and handed to the interpreter as bytes, so what was checked is what runs. A folder is read as its
last commit left it (``model_folder.read_consistent``): a commit in progress, or one cut off by a
crash, never yields a variant that does not match the metadata read with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import safe_files
from ..backends import Backend, check_model_bytes, read_model_bytes
from ..errors import ModelError, RuntimeTooOldError
from ..tflite.requirements import ModelRequirements, read_requirements
from . import reader as model_folder
from .reader import METADATA_FILE, FolderMetadata, FolderView


@dataclass(frozen=True)
class ModelChoice:
    """The model file to run, its checked bytes, the folder metadata describing it, and why it was picked."""

    path: Path
    content: bytes
    folder: Path | None  # the model folder whose metadata.json describes the file
    metadata: FolderMetadata | None
    note: str | None = None  # one line: which variant of a folder, and why
    fallbacks: tuple[str, ...] = ()  # further variants (file names) this interpreter should run, best first


def requirements(path: Path) -> ModelRequirements:
    """Operator versions and minimum runtime of a .tflite file."""
    return read_requirements(read_model_bytes(path), str(path))


def _variant_bytes(view: FolderView, name: str) -> bytes:
    path = view.folder / name
    content = view.read(name, safe_files.MODEL_FILE_BYTES, "model file", ModelError)
    check_model_bytes(content, path)
    return content


def _described(
    view: FolderView, metadata: FolderMetadata | None, name: str, content: bytes, verify: bool
) -> ModelChoice:
    record = metadata.variant_for_file(name) if metadata is not None else None
    if record is not None and verify:
        model_folder.verify_content(content, view.folder / name, record)
    described = record is not None
    return ModelChoice(view.folder / name, content, view.folder if described else None, metadata if described else None)


def _folder_choice(view: FolderView, backend: Backend | None, verify: bool, only: tuple[str, ...]) -> ModelChoice:
    metadata = model_folder.metadata_from(view) if view.exists(METADATA_FILE) else None
    candidates = [n for n in model_folder.variant_candidates(view, metadata) if not only or n in only]
    if not candidates:
        raise ModelError(f"{view.folder}: folder holds no .tflite model; run `edge-pipeline convert {view.folder}`")
    runnable, first = candidates, None
    if backend is not None:
        runnable = []
        for name in candidates:
            content = _variant_bytes(view, name)
            if read_requirements(content, name).runs_on(backend.runtime_version):
                runnable.append(name)
                first = first or content  # only the chosen file's bytes stay in memory
        if not runnable:
            raise _too_old(view, candidates, backend)
    name = runnable[0]
    choice = _described(view, metadata, name, first or _variant_bytes(view, name), verify)
    note = None if only else _choice_note(view, name, candidates[0], backend)
    return ModelChoice(choice.path, choice.content, choice.folder, choice.metadata, note, tuple(runnable[1:]))


def _too_old(view: FolderView, candidates: list[str], backend: Backend) -> RuntimeTooOldError:
    runtime = backend.runtime_version
    needs = sorted({read_requirements(_variant_bytes(view, n), n).min_runtime or "?" for n in candidates})
    return RuntimeTooOldError(
        f"{view.folder}: every variant needs a newer TFLite runtime ({', '.join(needs)}) than "
        f"{backend.label} (runtime {runtime}); `pip install ai-edge-litert`, or convert with "
        f"`edge-pipeline convert --target-runtime {'.'.join(runtime.split('.')[:2])}`"
    )


def _choice_note(view: FolderView, chosen: str, best: str, backend: Backend | None) -> str:
    """One stderr line: the variant taken from a folder, and why."""
    if backend is None:
        return f"using {chosen}"
    if chosen == best:
        return f"using {chosen}, the folder's first choice, on {backend.label}"
    needed = read_requirements(_variant_bytes(view, best), best).min_runtime
    return (
        f"using {chosen}: the folder's first choice {best} needs TFLite runtime {needed}, {backend.label} "
        f"implements {backend.runtime_version}"
    )


def resolve_model(model: Path, backend: Backend | None = None, verify: bool = True) -> ModelChoice:
    """The file to run for a .tflite file or a model folder; with a backend, one its runtime can run."""
    model = Path(model)
    if not model.exists():
        raise ModelError(f"{model}: no such model file or folder")
    if model.is_dir():
        return model_folder.read_consistent(model, lambda view: _folder_choice(view, backend, verify, ()))
    folder = model.parent
    if not (folder / METADATA_FILE).is_file() or not model_folder.VARIANT_FILE.match(model.name):
        return ModelChoice(model, read_model_bytes(model), None, None)
    return model_folder.read_consistent(folder, lambda view: _file_choice(view, model, verify))


def _file_choice(view: FolderView, model: Path, verify: bool) -> ModelChoice:
    """A variant named by its path: checked against the folder's metadata when that describes it."""
    metadata = model_folder.metadata_from(view)
    if metadata.variant_for_file(model.name) is None:
        return ModelChoice(model, read_model_bytes(model), None, None)  # a .tflite dropped in by hand
    return _described(view, metadata, model.name, _variant_bytes(view, model.name), verify)


def resolve_variant(folder: Path, name: str, verify: bool = True) -> ModelChoice:
    """One named variant of a folder (the next one to try when an interpreter refused the first)."""
    return model_folder.read_consistent(Path(folder), lambda view: _folder_choice(view, None, verify, (name,)))

"""Choose a TFLite interpreter and load models with it, turning every failure into one line.

Order: ai-edge-litert, then tflite-runtime, then TensorFlow's own ``tf.lite`` as a last
resort. TensorFlow is only imported when neither of the small runtimes is installed or
when it is asked for by name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import safe_files
from .choices import BackendName
from .errors import BackendError, ModelError, RuntimeTooOldError, UsageError
from .limits import optional_threads
from .tflite.requirements import at_least, parse_version, read_requirements, version_text
from .tflite.structure import check_structure

AUTO = BackendName.AUTO
# name -> (module to import, attribute path of the Interpreter class, distribution for the version), in `auto` order
BACKENDS: dict[BackendName, tuple[str, str, str]] = {
    BackendName.LITERT: ("ai_edge_litert.interpreter", "Interpreter", "ai-edge-litert"),
    BackendName.TFLITE_RUNTIME: ("tflite_runtime.interpreter", "Interpreter", "tflite-runtime"),
    # tf.lite is an API alias: the class is only reachable as an attribute of tensorflow.
    BackendName.TENSORFLOW: ("tensorflow", "lite.Interpreter", "tensorflow"),
}
TFLITE_IDENTIFIER = b"TFL3"
INSTALL = {
    BackendName.LITERT: "pip install ai-edge-litert",
    # its last release, 2.14, is built against numpy 1
    BackendName.TFLITE_RUNTIME: "pip install tflite-runtime 'numpy<2' (its last release, 2.14, needs numpy 1)",
    BackendName.TENSORFLOW: "pip install tensorflow",
}
# ai-edge-litert is numbered apart from TensorFlow; each release carries the TFLite kernels of the
# TensorFlow release it was cut with (ai-edge-litert 1.2.0 pairs with TF 2.19, 1.3.0 with TF 2.20;
# the 2.3.0 library reports 2.22.0-dev0). (first ai-edge-litert version, TFLite runtime it implements)
LITERT_RUNTIMES = (((2, 3), "2.22.0"), ((2, 0), "2.21.0"), ((1, 3), "2.20.0"), ((1, 2), "2.19.0"), ((0,), "2.18.0"))
# What an interpreter prints when a model needs a newer kernel than it has.
_OP_VERSION = re.compile(r"Didn't find op for builtin opcode '(?P<op>[A-Z0-9_]+)' version '(?P<version>\d+)'")


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    version: str
    interpreter_class: Any

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def runtime_version(self) -> str:
        """The TFLite runtime version this interpreter implements, comparable with min_runtime_version."""
        return runtime_version(self.name, self.version)


def runtime_version(name: str, version: str) -> str:
    """TFLite runtime version of an interpreter package: its own for tflite-runtime and TensorFlow."""
    if name != "litert":
        return version_text(parse_version(version)[:3]) or version
    release = parse_version(version)
    return next((runtime for first, runtime in LITERT_RUNTIMES if release >= first), LITERT_RUNTIMES[-1][1])


_cache: dict[str, Backend] = {}


def _import_backend(name: str) -> Backend:
    module_name, attribute, distribution = BACKENDS[name]
    interpreter_class: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        interpreter_class = getattr(interpreter_class, part)
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Backend(name, version, interpreter_class)


def get_backend(name: str = AUTO) -> Backend:
    """Import the named interpreter backend, or the first one available for ``auto``."""
    if name in _cache:
        return _cache[name]
    if name not in BackendName.values():
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(BackendName.values())}")
    name = BackendName(name)
    candidates = list(BACKENDS) if name is AUTO else [name]
    failures = []
    for candidate in candidates:
        try:
            backend = _import_backend(candidate)
        except Exception as error:  # noqa: BLE001 - a broken install (e.g. numpy ABI) is as good as absent
            failures.append(f"{candidate}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            continue
        _cache[name] = _cache[candidate] = backend
        return backend
    tried = "; ".join(failures)
    if name != AUTO:
        raise BackendError(
            f"--backend {name} could not be imported ({tried}); install it with `{INSTALL[name]}`"
            + (
                ""
                if name is BackendName.LITERT
                else ", or use the maintained interpreter: `pip install ai-edge-litert`"
            )
        )
    raise BackendError(
        f"no TFLite interpreter could be imported ({tried}); install one with "
        f"`pip install ai-edge-litert` (or `pip install tflite-runtime 'numpy<2'`)"
    )


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """Capture what the C++ runtime writes to file descriptor 2 (it bypasses sys.stderr).

    The interpreter prints INFO lines on every load and its real error reasons only there;
    capturing lets the caller drop the noise and put the reason into a one-line message.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())


def _relay(lines: list[str]) -> None:
    """Pass on native output that is not routine INFO chatter."""
    for line in lines:
        if line.strip() and not line.startswith("INFO:"):
            print(line, file=sys.stderr)


def _reason(error: BaseException, lines: list[str]) -> str:
    """The most useful single line explaining why the runtime refused a model."""
    texts = [str(error)] + [line for line in lines if line.startswith("ERROR:")]
    for text in texts:
        for line in text.splitlines():
            line = line.removeprefix("ERROR:").strip()
            if line and not line.startswith("See instructions"):
                return line
    return type(error).__name__


def check_model_bytes(content: bytes, path: Path | str) -> None:
    """Refuse what is not a sound TFLite FlatBuffer (one ModelError line) before any native code parses it."""
    if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier; empty, truncated or another format)")
    check_structure(content, str(path))


def read_model_bytes(path: Path) -> bytes:
    """Read a .tflite file (a regular file, bounded) and check its structure, before any native code parses it."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder with no .tflite model in it")
    content = safe_files.read_bounded(path, safe_files.MODEL_FILE_BYTES, "model file", ModelError)
    check_model_bytes(content, path)
    return content


def invoke(interpreter: Any, path: Path) -> None:
    """Run the model once; a model that passed loading but fails to run is a ModelError line.

    No stderr capture here: this is the per-image hot path, and the error carries the reason.
    """
    try:
        interpreter.invoke()
    except (ValueError, RuntimeError, MemoryError) as error:
        raise ModelError(f"{path}: the interpreter failed to run this model: {_reason(error, [])}") from None


def load_interpreter(
    path: Path, threads: int | None = None, backend: str = AUTO, content: bytes | None = None
) -> tuple[Any, Backend]:
    """Create and allocate an interpreter for a .tflite file (or its checked bytes); errors are ModelError lines."""
    threads = optional_threads(threads)
    if content is None:
        content = read_model_bytes(path)
    chosen = get_backend(backend)
    with native_stderr_captured() as lines:
        try:
            interpreter = chosen.interpreter_class(model_content=content, num_threads=threads)
        except (ValueError, RuntimeError, MemoryError) as error:  # MemoryError: std::bad_alloc of a huge tensor
            failure: BaseException | None = error
            stage = "not a valid TFLite model (truncated or damaged)"
        else:
            try:
                interpreter.allocate_tensors()
                failure = None
            except (ValueError, RuntimeError, MemoryError) as error:
                failure = error
                stage = f"{chosen.label} cannot run this model"
    if failure is not None:
        reason = _reason(failure, lines)
        if _OP_VERSION.search(reason):
            raise RuntimeTooOldError(too_old_message(path, content, reason, chosen))
        raise ModelError(f"{path}: {stage}: {reason}")
    _relay(lines)
    return interpreter, chosen


def _runs_on(path: Path, runtime: str) -> bool:
    try:
        return read_requirements(read_model_bytes(path), str(path)).runs_on(runtime)
    except ModelError:
        return False


def too_old_message(path: Path, content: bytes, reason: str, backend: Backend) -> str:
    """One line for a model whose op version the interpreter lacks: what, what is needed, what to do."""
    match = _OP_VERSION.search(reason)
    op = f"{match['op']} version {match['version']}" if match else "an operator version"
    needed = read_requirements(content, str(path)).min_runtime
    runtime = backend.runtime_version
    needs = (
        "a newer TFLite runtime" if needed is None or at_least(runtime, needed) else f"TFLite runtime {needed} or newer"
    )
    siblings = [
        other.name
        for other in sorted(Path(path).parent.glob("model_*.tflite"))
        if other.name != Path(path).name and _runs_on(other, runtime)
    ]
    instead = f"use {' or '.join(siblings[:3])}" if siblings else "use another variant of the model"
    return (
        f"{path}: needs {needs} for op {op}; installed: {backend.label} "
        f"(runtime {runtime}); {instead}, `pip install ai-edge-litert`, or "
        f"convert with `edge-pipeline convert --target-runtime {'.'.join(runtime.split('.')[:2])}`"
    )

"""Training's own state after every epoch, so an interrupted training continues where it stopped.

``checkpoint.npz`` in the model folder holds, in one file replaced atomically after each finished epoch:
every variable of the model (weights, and the dropout layers' random-generator states), every variable of
the optimizer (Adam's moments and its step count, which is also the learning-rate schedule's position),
the weights of the best epoch so far (early stopping restores them), and a JSON record: the epochs done,
the phase (the head, then the fine-tuning of a pretrained backbone), the history, early stopping's best
loss and patience count, and a fingerprint of everything the training depends on. Each epoch's shuffle
and augmentation are seeded by the epoch's number, so a resumed training sees the batches an
uninterrupted one would: measured, the same history to the last bit (tests/test_resume.py).

The file is untrusted input like the rest of the folder: its zip directory is bounded before zipfile lists
it (MAX_MEMBERS, MAX_DIRECTORY_BYTES), it is read member by member with ``allow_pickle`` off, each array
checked against the shape and dtype of the variable it is for before a byte of it is read, and every array is
read and checked (length, checksum) before a resume is announced (``verify``). Anything that does not fit
(another model, other settings, a damaged file) is ignored with one line: the training starts over. The
finished training's commit removes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.safe_files import zip_directory

from ..signals import interrupts_deferred
from ..store.commits import atomic_path, now, to_json

STATE = "state"
MAX_STATE_BYTES = 4 << 20
# The zip's directory, bounded before zipfile lists it (docs/day-two.md): a MobileNetV2's checkpoint holds 844
# members (about 100 bytes each in the directory); one with a million empty members took 1.2 GB to resume from.
MAX_MEMBERS = 20_000
MAX_DIRECTORY_BYTES = 4 << 20
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
UNREADABLE = (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error)
HEAD, FINE_TUNE = "head", "fine-tune"


class CheckpointUnusable(Exception):
    """The checkpoint cannot be resumed from; the message says why (one line)."""


def fingerprint(settings: dict[str, Any]) -> str:
    """A short hash of everything a training depends on (settings, data identity, model, library versions)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass
class EpochState:
    """Where a training is: epochs done, the phase it is in, its history and early stopping's state."""

    fingerprint: str
    total_epochs: int  # the most this training runs (head + fine-tuning), for messages
    phase: str = HEAD
    epochs_done: int = 0
    head_epochs: int | None = None  # set when the head phase ended
    history: dict[str, list[float]] = field(default_factory=dict)
    best_loss: float | None = None
    best_epoch: int | None = None
    waited: int = 0
    stopped: bool = False  # the current phase has ended (early stop, or every epoch run)
    saved_at: str = ""
    best_weights: list[np.ndarray] | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("best_weights")
        return data

    def add(self, logs: dict[str, float], model: Any, patience: int) -> None:
        """One finished epoch: its numbers into the history, and early stopping's bookkeeping (as Keras')."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done += 1
        loss = float(logs["val_loss"])
        if self.best_loss is None or loss < self.best_loss:
            self.best_loss, self.best_epoch, self.waited = loss, self.epochs_done, 0
            self.best_weights = [np.array(w) for w in model.get_weights()]
        else:
            self.waited += 1
            self.stopped = self.waited >= patience

    def begin(self, phase: str) -> None:
        """The next phase starts from the best weights of the last: early stopping starts afresh."""
        self.phase, self.head_epochs = phase, self.epochs_done
        self.best_loss = self.best_epoch = None
        self.waited, self.stopped, self.best_weights = 0, False, None


def _arrays(prefix: str, values: Sequence[Any]) -> dict[str, np.ndarray]:
    return {f"{prefix}/{index:05d}": np.asarray(value) for index, value in enumerate(values)}


def _components(variable: Any) -> list[Any]:
    """The per-replica copies of a variable under tf.distribute (one entry otherwise)."""
    return list(getattr(getattr(variable, "value", None), "values", None) or [variable])


def _replica_values(model: Any) -> dict[int, np.ndarray]:
    """Variables whose replicas hold different values, stacked by replica: under MirroredStrategy each replica
    keeps its own batch-normalization statistics (measured: they differ in the 4th digit after 4 steps), and a
    resumed training that gave every replica replica 0's would drift from an uninterrupted one."""
    found = {}
    for index, variable in enumerate(model.variables):
        parts = [np.asarray(part.numpy()) for part in _components(variable)]
        if len(parts) > 1 and any(not np.array_equal(parts[0], part) for part in parts[1:]):
            found[index] = np.stack(parts)
    return found


def save(path: Path, state: EpochState, model: Any, optimizer: Any) -> None:
    """Write the checkpoint atomically (a temporary file, fsynced, renamed), with Ctrl-C held until it is done."""
    state.saved_at = now()
    variables = [v.numpy() for v in model.variables]
    replicas = _replica_values(model)
    slots = [v.numpy() for v in optimizer.variables] if optimizer is not None else []
    record = {
        **state.record(),
        "model": [(v.path, list(v.shape), str(v.dtype)) for v in model.variables],
        "optimizer": [(v.path, list(v.shape), str(v.dtype)) for v in optimizer.variables] if optimizer else [],
        "best": len(state.best_weights or []),
        "replicas": sorted(replicas),
    }
    text = np.frombuffer(to_json(record).encode(), dtype=np.uint8)
    with interrupts_deferred(), atomic_path(path) as temp, open(temp, "wb") as stream:
        np.savez(
            stream,
            **{STATE: text},
            **_arrays("model", variables),
            **_arrays("optimizer", slots),
            **_arrays("best", state.best_weights or []),
            **{f"replicas/{index:05d}": value for index, value in replicas.items()},
        )


def _header(stream: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy stream, read without unpickling anything."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


@contextmanager
def _archive(path: Path) -> Iterator[zipfile.ZipFile]:
    """The checkpoint's zip: a regular file (never waited on), whose end record declares at most MAX_MEMBERS
    members in at most MAX_DIRECTORY_BYTES before zipfile lists them, each stored or deflated."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise CheckpointUnusable(f"it cannot be read ({error.strerror or error})") from None
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise CheckpointUnusable("it is not a regular file")
        declared = zip_directory(stream)
        if declared is None:
            raise CheckpointUnusable("it is not a readable checkpoint (no zip directory)")
        members, size = declared
        if members > MAX_MEMBERS or size > MAX_DIRECTORY_BYTES:
            raise CheckpointUnusable(
                f"its zip declares {members:,} files in a {size:,}-byte directory, over the limit of "
                f"{MAX_MEMBERS:,} files in {MAX_DIRECTORY_BYTES:,} bytes"
            )
        with zipfile.ZipFile(stream) as archive:
            odd = next((i for i in archive.infolist() if i.compress_type not in ZIP_METHODS), None)
            if odd is not None:
                raise CheckpointUnusable(
                    f"its {odd.filename[:100]!r} is compressed with method {odd.compress_type}, not stored or deflate"
                )
            yield archive


def _member(archive: zipfile.ZipFile, name: str, shape: Sequence[int], dtype: str) -> np.ndarray:
    """One array of the archive, refused unless it is exactly the shape and dtype expected (no pickles) and its
    bytes are whole (its length and checksum: zipfile checks the CRC once the last byte is read)."""
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise CheckpointUnusable(f"it has no {name}") from None
    wanted = np.dtype(dtype)
    size = math.prod(shape) * wanted.itemsize
    if info.file_size > size + 4096:
        raise CheckpointUnusable(f"its {name} is larger than the variable it is for")
    with archive.open(info) as stream:
        found, fortran, kind = _header(stream)
        if tuple(found) != tuple(shape) or kind != wanted or kind.hasobject or fortran:
            raise CheckpointUnusable(f"its {name} is {kind}{list(found)}, the model's is {wanted}{list(shape)}")
        data = stream.read(size)
        if len(data) != size:
            raise CheckpointUnusable(f"its {name} is cut short")
        if stream.read(1):
            raise CheckpointUnusable(f"its {name} is longer than its shape")
    return np.frombuffer(data, dtype=wanted).reshape(shape)


def read_state(path: Path) -> dict[str, Any]:
    """The checkpoint's JSON record (bounded); CheckpointUnusable when it is not one."""
    try:
        with _archive(path) as archive:
            info = archive.getinfo(f"{STATE}.npy")
            if info.file_size > MAX_STATE_BYTES:
                raise CheckpointUnusable("its record is too large")
            with archive.open(info) as stream:
                shape, _, kind = _header(stream)
                if kind != np.uint8 or len(shape) != 1:
                    raise CheckpointUnusable("its record is not text")
                record = json.loads(stream.read(MAX_STATE_BYTES).decode("utf-8"))
    except (*UNREADABLE, KeyError, UnicodeDecodeError) as error:
        raise CheckpointUnusable(f"it is not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(record, dict):
        raise CheckpointUnusable("its record is not an object")
    return record


def _state(record: dict[str, Any]) -> EpochState:
    """The EpochState of a record, every field checked (it came from a file)."""
    try:
        state = EpochState(
            fingerprint=str(record["fingerprint"]),
            total_epochs=int(record["total_epochs"]),
            phase=record["phase"] if record["phase"] in (HEAD, FINE_TUNE) else HEAD,
            epochs_done=int(record["epochs_done"]),
            head_epochs=None if record["head_epochs"] is None else int(record["head_epochs"]),
            history={str(k): [float(x) for x in v] for k, v in dict(record["history"]).items()},
            best_loss=None if record["best_loss"] is None else float(record["best_loss"]),
            best_epoch=None if record["best_epoch"] is None else int(record["best_epoch"]),
            waited=int(record["waited"]),
            stopped=record["stopped"] is True,
            saved_at=str(record["saved_at"])[:64],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointUnusable(f"its record is incomplete ({type(error).__name__}: {error})") from None
    lengths = {len(values) for values in state.history.values()}
    if not 0 <= state.epochs_done <= state.total_epochs or lengths - {state.epochs_done}:
        raise CheckpointUnusable("its epochs and its history do not agree")
    return state


def load(path: Path, expected: str) -> EpochState:
    """The state to resume from, when the checkpoint is of this very training (CheckpointUnusable otherwise)."""
    state = _state(read_state(path))
    if state.fingerprint != expected:
        raise CheckpointUnusable("it is of another training (other settings, data or library versions)")
    return state


def _listed(record: dict[str, Any], key: str, variables: Sequence[Any]) -> None:
    """The checkpoint's variables are this model's, in order, by shape and dtype (names carry a process's counters:
    a second optimizer in one process is `adam_1`)."""
    listed = record.get(key)
    shapes = [[list(v.shape), str(v.dtype)] for v in variables]
    if not isinstance(listed, list) or [x[1:] if isinstance(x, list) else x for x in listed] != shapes:
        raise CheckpointUnusable(f"its {key} variables are not this model's")


def _recorded(record: dict[str, Any], key: str) -> list[tuple[tuple[int, ...], str]]:
    """(shape, dtype) of each variable the record lists under `key`, each checked to be one."""
    listed = record.get(key)
    try:
        found = [(tuple(int(n) for n in item[1]), str(item[2])) for item in listed or []]
        if not isinstance(listed, list) or any(
            min(s, default=0) < 0 or np.dtype(d).kind not in "biuf" for s, d in found
        ):
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise CheckpointUnusable(f"its record of the {key} variables is damaged") from None
    return found


Wanted = list[tuple[str, tuple[int, ...], str]]


def _wanted(record: dict[str, Any], model: Any, slots: list[tuple[tuple[int, ...], str]]) -> Wanted:
    """(name, shape, dtype) of every array a resume of `model` reads; `slots` are the optimizer's variables."""
    wanted = [(f"model/{i:05d}", tuple(v.shape), str(v.dtype)) for i, v in enumerate(model.variables)]
    wanted += [(f"optimizer/{i:05d}", shape, dtype) for i, (shape, dtype) in enumerate(slots)]
    count = record.get("best") or 0
    if count and count != len(model.weights):
        raise CheckpointUnusable("its best weights are not this model's")
    wanted += [(f"best/{i:05d}", tuple(w.shape), str(w.dtype)) for i, w in enumerate(model.weights)] if count else []
    indexes = record.get("replicas") or []
    if not isinstance(indexes, list) or not all(isinstance(i, int) and 0 <= i < len(model.variables) for i in indexes):
        raise CheckpointUnusable("its per-replica values are not this model's")
    for index in indexes:
        variable = model.variables[index]
        wanted.append((f"replicas/{index:05d}", (len(_components(variable)), *variable.shape), str(variable.dtype)))
    return wanted


def _read(path: Path, record: dict[str, Any], model: Any, slots: list[tuple[tuple[int, ...], str]]) -> Iterator[Any]:
    """Each array `_wanted` names, read and checked in turn; the archive must hold these and its record only."""
    wanted = _wanted(record, model, slots)
    try:
        with _archive(path) as archive:
            if len(archive.infolist()) != len(wanted) + 1:
                raise CheckpointUnusable(
                    f"it holds {len(archive.infolist()):,} files, its record names {len(wanted) + 1:,}"
                )
            for name, shape, dtype in wanted:
                yield name, _member(archive, name, shape, dtype)
    except UNREADABLE as error:
        raise CheckpointUnusable(f"it is not a readable checkpoint ({type(error).__name__})") from None


def verify(path: Path, model: Any) -> None:
    """Read and check every array a resume of `model` will read (shape, dtype, length, checksum), one at a time,
    before anyone says "resuming after epoch N": a damaged checkpoint then starts over, as documented. The
    optimizer's variables exist only once its phase compiles, so its arrays are held to the record's list of
    them here, and `restore` holds that list to the live optimizer."""
    record = read_state(path)
    _listed(record, "model", model.variables)
    for _ in _read(path, record, model, _recorded(record, "optimizer")):
        pass


def restore(path: Path, state: EpochState, model: Any, optimizer: Any) -> None:
    """Put the checkpoint's variables into the model and optimizer, and its best weights into `state`."""
    record = read_state(path)
    _listed(record, "model", model.variables)
    slots = list(optimizer.variables) if optimizer is not None else []
    _listed(record, "optimizer", slots)
    arrays = dict(_read(path, record, model, [(tuple(v.shape), str(v.dtype)) for v in slots]))
    for index, variable in enumerate(model.variables):
        variable.assign(arrays[f"model/{index:05d}"])
    for index in record.get("replicas") or []:
        for part, value in zip(_components(model.variables[index]), arrays[f"replicas/{index:05d}"], strict=True):
            part.assign(value)
    for index, variable in enumerate(slots):
        variable.assign(arrays[f"optimizer/{index:05d}"])
    best = [arrays[f"best/{i:05d}"] for i in range(len(model.weights))] if record.get("best") else []
    state.best_weights = [np.array(w) for w in best] or None

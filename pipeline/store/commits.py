"""Writing a model folder safely: one writer at a time, commits a crash cannot tear, room checked first.

- **One writer at a time.** Every stage that writes holds an advisory lock on ``.lock`` (``fcntl.flock``)
  from reading metadata.json to committing it. A second writer stops at once, in one line naming the
  command that holds it (it does not wait: a CI job should fail loudly, not hang). Readers never lock.
- **Crash-safe commits.** A stage stages each file as a hidden temporary (fsynced), then writes
  ``.commit.json``: the renames it will make, metadata.json last, and the files it removes. Only then does
  it remove and rename (``renameat`` relative to the folder's descriptor), fsync the folder, and delete the
  journal. A SIGKILL at any instant leaves either no journal (the old state; its temporaries are swept)
  or a journal that the next writer rolls forward and that readers follow meanwhile
  (``edge_runtime.folder.reader.FolderView``): old state or new, never a mix.
- **Room first.** Taking the lock writes the lock file, so a read-only folder is found before any work;
  ``check_room`` compares free space with a stage's estimate; a full disk or a read-only file system met
  later still names the folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from edge_runtime import safe_files
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.folder.reader import JOURNAL_FILE, METADATA_FILE, TEMP_MARKER, Journal, read_journal

from ..errors import FolderError
from ..signals import interrupts_deferred

LOCK_FILE = ".lock"
MB = 1 << 20
# OSErrors that mean "this folder cannot take the files": named with the path, never an unexpected error.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
T = TypeVar("T")
_held: dict[str, int] = {}  # folders this process holds the lock of (a `run` nests its stages), by real path


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def temp_path(path: Path) -> Path:
    """A fresh hidden name beside `path` that keeps its suffix (Keras and matplotlib need it)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}{TEMP_MARKER}", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    Path(name).chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; the published file should be like any other
    return Path(name)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    try:
        yield temp
        _fsync(temp)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, to_json(data))


# --- the journal -------------------------------------------------------------------------------------


def _directory(folder: Path) -> int:
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def roll_forward(folder: Path, journal: Journal, descriptor: int) -> None:
    """Make a journal's removals and renames (again: each is idempotent), then retire the journal."""
    for name in journal.removes:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=descriptor)
    for temp, final in journal.renames:
        with contextlib.suppress(FileNotFoundError):  # renamed before the crash
            os.replace(temp, final, src_dir_fd=descriptor, dst_dir_fd=descriptor)
    os.fsync(descriptor)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(JOURNAL_FILE, dir_fd=descriptor)
    os.fsync(descriptor)


def apply(folder: Path, journal: Journal) -> None:
    """Publish a commit: the journal first (durably), then its renames; a crash anywhere is recoverable."""
    record = temp_path(folder / JOURNAL_FILE)
    record.write_text(to_json(journal.to_dict()), encoding="utf-8")
    _fsync(record)
    descriptor = _directory(folder)
    try:
        os.replace(record.name, JOURNAL_FILE, src_dir_fd=descriptor, dst_dir_fd=descriptor)
        os.fsync(descriptor)
        roll_forward(folder, journal, descriptor)
    finally:
        os.close(descriptor)
        record.unlink(missing_ok=True)


def recover(folder: Path) -> bool:
    """Roll an unfinished commit forward and sweep stray temporaries; True when there was one to finish."""
    if not folder.is_dir():
        return False
    try:
        journal = read_journal(folder)
    except EdgeRuntimeError as error:
        raise FolderError(str(error)) from None
    if journal is not None:
        descriptor = _directory(folder)
        try:
            roll_forward(folder, journal, descriptor)
        finally:
            os.close(descriptor)
    for leftover in folder.glob(f".*{TEMP_MARKER}*"):
        with contextlib.suppress(OSError):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
    return journal is not None


# --- a stage's files ----------------------------------------------------------------------------------


class Transaction:
    """Files a stage writes, staged as hidden temporaries and committed together (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._staged: dict[str, Path] = {}
        self._removed: set[str] = set()

    def path(self, name: str) -> Path:
        """A temporary path to write `name` to (for libraries that write by file name)."""
        if name not in self._staged:
            self._staged[name] = temp_path(self.folder / name)
        return self._staged[name]

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.path(name)
        target.write_bytes(data)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, to_json(data))

    def remove(self, name: str) -> None:
        """Delete `name` from the folder at commit time."""
        self._removed.add(name)

    def record(self, name: str) -> dict[str, Any]:
        """bytes and sha256 of a staged file, for metadata.json."""
        from edge_runtime.folder.reader import sha256_file

        path = self._staged[name]
        return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}

    def commit(self, metadata: Any) -> None:
        """Publish every staged file and metadata.json (last), with Ctrl-C held back until it is done."""
        metadata.updated_at = now()
        self.write_text(METADATA_FILE, to_json(metadata.to_dict()))
        for temp in self._staged.values():
            _fsync(temp)
        renames = [(t.name, n) for n, t in self._staged.items() if n != METADATA_FILE]
        renames.append((self._staged[METADATA_FILE].name, METADATA_FILE))
        journal = Journal(tuple(renames), tuple(sorted(self._removed - set(self._staged))))
        with interrupts_deferred():
            apply(self.folder, journal)
        self._staged.clear()

    def abort(self) -> None:
        for temp in self._staged.values():
            temp.unlink(missing_ok=True)
        self._staged.clear()


# --- one writer at a time ------------------------------------------------------------------------------


def _holder(descriptor: int) -> str:
    """Who holds the lock, from what it wrote into the lock file."""
    try:
        data = json.loads(os.pread(descriptor, 4096, 0).decode("utf-8") or "{}")
        return f"`edge-pipeline {data['command']}` (pid {data['pid']}, since {data['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another edge-pipeline command"


def _open_lock(folder: Path) -> int:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise FolderError(f"{folder}: cannot write to the model folder ({error.strerror or error})") from None


@contextlib.contextmanager
def writing(folder: Path, command: str) -> Iterator[None]:
    """Hold the folder's lock for a stage (re-entrant within this process); finish an interrupted commit first."""
    folder = Path(folder)
    key = str(folder.resolve())
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = not folder.exists()
    descriptor = _open_lock(folder)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderError(
                f"{folder}: {_holder(descriptor)} is writing this model folder; wait for it to finish, then run "
                f"`{command}` again"
            ) from None
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, json.dumps({"command": command, "pid": os.getpid(), "since": now()}).encode(), 0)
        except OSError as error:
            raise FolderError(f"{folder}: cannot write to the model folder ({error.strerror or error})") from None
        _held[key] = 1
        try:
            recover(folder)
            yield
        except OSError as error:
            if error.errno not in NO_ROOM:
                raise
            where = error.filename or folder
            raise FolderError(f"{where}: {error.strerror or error} while `{command}` wrote the model folder") from None
        finally:
            del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)  # the holder's line means nothing once it has let go
    finally:
        os.close(descriptor)  # releases the lock
        if created:
            _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    """A folder this stage created and left without a file (it failed): gone again, as it was before."""
    with contextlib.suppress(OSError):
        if [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()
            folder.rmdir()


def holding(folder: Path) -> bool:
    """True when this process holds the folder's lock."""
    return str(Path(folder).resolve()) in _held


def check_room(folder: Path, needed: int, stage: str) -> None:
    """Refuse, before the work, a stage whose files will not fit (an estimate, with margin)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise FolderError(
            f"{folder}: {free / MB:,.1f} MB free, and {stage} writes about {needed / MB:,.1f} MB; free some space "
            "(or write the model folder elsewhere)"
        )


def parsed_results(what: str, parse: Callable[[], T]) -> T:
    """A result file's typed form. Result files are checked against metadata.json's sha256, but a folder forged
    consistently passes that: a file of the wrong shape (edited, damaged, of another version) is one FolderError
    line, never a KeyError traceback."""
    try:
        return parse()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise FolderError(
            f"{what}: not what its stage writes ({type(error).__name__}: {error}); damaged, edited or of another "
            "version: re-run the stage that writes it"
        ) from None


def read_results_json(path: Path, what: str) -> dict[str, Any]:
    """A result file of the folder (drift.json, benchmark.json, ...): bounded like every read of a folder."""
    from edge_runtime.folder.reader import read_json_object

    return read_json_object(path, what, safe_files.RESULTS_JSON_BYTES)

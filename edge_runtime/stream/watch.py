"""Images as they are written into a directory (`predict MODEL --watch DIR`), complete files only.

The directory is polled (no dependency beyond the standard library, and it works on every file system a
Pi mounts). A file is taken once it is complete: renamed into place (already older than the settle time
when first seen), or written in place and unchanged in size and modification time for SETTLE_SECONDS.
Hidden files and names that say "not finished" (.tmp, .part, .partial, .crdownload, ~) are left alone, and
so are the files already there when the watch starts. A file written again is classified again. A writer that
pauses longer than the settle time can still leave a file that does not decode yet: `retry` takes it again
when it changes (the caller reports it only once it has stayed unreadable for RETRY_SECONDS).

What the watch remembers is the files there now: one that is gone is forgotten (a camera app that writes
and deletes a snapshot a second keeps the watch's memory at the folder's size, not at every file it ever
saw; a name written again later is a new file). A folder that is gone, or can no longer be listed, ends
the watch with WatchError (one line, exit 1) instead of polling an empty answer for ever.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import EdgeRuntimeError
from ..images import is_image_file

SETTLE_SECONDS = 0.5
RETRY_SECONDS = 5.0
POLL_SECONDS = 0.1
UNFINISHED = (".tmp", ".part", ".partial", ".crdownload", "~")


class WatchError(EdgeRuntimeError):
    """The watched folder is gone or cannot be listed any more."""


def _candidates(directory: Path) -> dict[Path, tuple[int, int]]:
    found: dict[Path, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(directory))
    except OSError as error:
        reason = "it is gone" if isinstance(error, FileNotFoundError) else error.strerror or type(error).__name__
        raise WatchError(f"--watch {directory}: the folder cannot be listed any more ({reason}); stopping") from None
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name.lower().endswith(UNFINISHED) or not is_image_file(Path(name)):
            continue
        try:
            status = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if entry.is_file(follow_symlinks=False):
            found[Path(entry.path)] = (status.st_size, status.st_mtime_ns)
    return found


class DirectoryWatch:
    """Iterate over each image file that appears (or is rewritten) in a directory once it is complete."""

    def __init__(self, directory: Path, settle: float = SETTLE_SECONDS, poll: float = POLL_SECONDS) -> None:
        self.directory, self.settle, self.poll = Path(directory), settle, poll
        self._done = dict(_candidates(self.directory))  # what is there already is not new
        self._changing: dict[Path, tuple[tuple[int, int], float]] = {}

    @property
    def remembered(self) -> int:
        """Files the watch keeps a note of (taken, or changing): at most the files in the folder."""
        return len(self._done) + len(self._changing)

    def retry(self, path: Path) -> None:
        """Take `path` again when it is next seen complete (it could not be read yet: still being written)."""
        self._done.pop(path, None)

    def _ready(self) -> list[Path]:
        now_wall, now, ready = time.time(), time.monotonic(), []
        present = _candidates(self.directory)
        for gone in [path for path in self._done if path not in present]:
            del self._done[gone]
        for gone in [path for path in self._changing if path not in present]:
            del self._changing[gone]
        for path, state in present.items():
            if self._done.get(path) == state:
                continue
            seen, since = self._changing.get(path, (None, now))
            if seen != state:
                # Renamed into place (or copied long ago): already as old as the settle time, so complete now.
                since = now - self.settle if now_wall - state[1] / 1e9 >= self.settle else now
                self._changing[path] = (state, since)
            if now - since >= self.settle and state[0] > 0:
                self._done[path] = state
                self._changing.pop(path, None)
                ready.append(path)
        return ready

    def __iter__(self) -> Iterator[Path]:
        while True:
            yield from self._ready()
            time.sleep(self.poll)

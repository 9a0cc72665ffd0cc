"""A copy of a model folder (the emulated Pi's board, the calibration benchmark) takes its contract only: issue #28.

`shutil.copytree` followed symlinks: one to a host file arrived on the board as a regular file, one to `/` would
have copied the disk. The copy now takes metadata.json and the files it records, each a regular file inside
the folder matching its sha256, and the sample images file by file; these tests use real folders with real
symlinks (to a host file and to `/`, never followed: the copy's own list of files shows it) and need no qemu.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.devices.emulator import _board
from pipeline.errors import FolderError
from pipeline.store.copies import copy_folder
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
SECRET = "host secret, never to be copied\n"


def _contract(folder: Path) -> set[str]:
    """metadata.json and every file it records: what a copy of the folder must hold."""
    metadata = json.loads((folder / "metadata.json").read_text())
    return {"metadata.json", *metadata["files"], *(v["file"] for v in metadata["variants"].values())}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "fashion-mnist-cnn"
    shutil.copytree(SHIPPED, copy)
    (tmp_path / "host.txt").write_text(SECRET)
    return copy


def _links_out(folder: Path) -> None:
    """Symlinks beside the contract: to a host file, to `/`, inside samples/ too."""
    host = folder.parent / "host.txt"
    (folder / "notes.txt").symlink_to(host)
    (folder / "root").symlink_to("/")
    (folder / "samples" / "evil.png").symlink_to(host)
    (folder / "samples" / "disk").symlink_to("/")


def _replace_with_link(name: str, to: str | None = None) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        target = Path(to) if to else folder.parent / f"outside-{name}"
        if to is None:
            target.write_bytes((folder / name).read_bytes())  # the same bytes: only where it lives is wrong
        (folder / name).unlink()
        (folder / name).symlink_to(target)

    return change


def _samples_to_root(folder: Path) -> None:
    shutil.rmtree(folder / "samples")
    (folder / "samples").symlink_to("/")


def _fifo(folder: Path) -> None:
    (folder / "labels.txt").unlink()
    os.mkfifo(folder / "labels.txt")


def _damaged(folder: Path) -> None:
    data = bytearray((folder / "model_int8.tflite").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model_int8.tflite").write_bytes(bytes(data))


# (case, change to the folder, the skipped lines expected, or the one-line refusal expected)
CASES: list[tuple[str, Callable[[Path], None], list[str] | None, str | None]] = [
    ("symlinks to a host file and to / beside the contract", _links_out,
     ["samples/disk: skipped, a symlink", "samples/evil.png: skipped, a symlink"], None),
    ("samples/ a symlink to /", _samples_to_root, ["samples: skipped, a symlink or a file, not a folder"], None),
    ("labels.txt a symlink to a host file", _replace_with_link("labels.txt"), None, "resolves outside its model"),
    ("a variant a symlink to /", _replace_with_link("model_int8.tflite", "/"), None, "resolves outside its model"),
    ("labels.txt a FIFO", _fifo, None, "is a FIFO"),
    ("a variant damaged", _damaged, None, "does not match its sha256"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "skipped", "refused"), CASES, ids=[c[0] for c in CASES])
def test_the_board_gets_the_folder_contract_and_never_follows_a_symlink_out(
    folder: Path, tmp_path: Path, case: str, change: Callable, skipped: list[str] | None, refused: str | None
) -> None:
    """What `make pi-check` copies (pipeline.devices.emulator._board), without starting the emulated Pi."""
    change(folder)
    workdir = tmp_path / "work"
    workdir.mkdir()
    if refused is not None:
        with pytest.raises(FolderError, match=refused) as caught:
            _board(folder, workdir)
        assert "\n" not in str(caught.value)
        return
    board, images, copied = _board(folder, workdir)
    shipped = {name for name in _contract(folder) if name != "model.keras" and not name.endswith(".png")}
    found = [] if (folder / "samples").is_symlink() else list((folder / "samples").iterdir())
    samples = {f"samples/{p.name}" for p in found if p.is_file() and not p.is_symlink()}
    assert set(copied.copied) == {f"model/{name}" for name in shipped} | samples
    assert sorted(copied.skipped) == skipped
    assert images == (sorted(samples) or ["gray.png"])
    on_board = [*(board / "model").rglob("*"), *(board / "samples").rglob("*")]
    assert not any(p.is_symlink() for p in on_board)
    assert {p.relative_to(board / "model").as_posix() for p in (board / "model").iterdir()} == shipped
    assert all(SECRET.encode() not in p.read_bytes() for p in on_board if p.is_file())


def test_a_copy_for_the_pipeline_keeps_every_recorded_file_and_checks_it(folder: Path, tmp_path: Path) -> None:
    """The calibration benchmark's scratch copy: model.keras and the results too, each checked, nothing else."""
    _links_out(folder)
    copied = copy_folder(folder, tmp_path / "copy")
    assert set(copied.copied) == _contract(folder) and not copied.skipped
    assert {p.name for p in (tmp_path / "copy").iterdir()} == _contract(folder)
    assert all((tmp_path / "copy" / n).read_bytes() == (folder / n).read_bytes() for n in _contract(folder))

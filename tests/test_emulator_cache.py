"""The emulated Pi's cache survives being moved: each CPU's prefix links into the shared userland relatively.

Found when the cache moved folder: absolute links still pointed at the old place, qemu could not open
/lib/ld-linux-aarch64.so.1, and every variant became "the interpreter crashed on it under emulation".
No qemu here: the prefix is plain files and links.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.devices.emulator import Emulator
from pipeline.devices.instructions import cpu_prefix, resolve


def _userland(home: Path) -> Emulator:
    for name in ("usr/lib", "lib", "etc"):
        (home / "root" / name).mkdir(parents=True)
    (home / "root" / "usr" / "lib" / "ld-linux-aarch64.so.1").write_text("loader")
    return Emulator(home)


def test_a_moved_cache_keeps_working_and_a_stale_prefix_is_made_again(tmp_path: Path) -> None:
    pi5 = resolve("pi5")
    prefix = cpu_prefix(_userland(tmp_path / "before"), pi5)
    assert (prefix / "proc" / "cpuinfo").read_text() == pi5.cpuinfo and not (prefix / "proc").is_symlink()
    shutil.move(tmp_path / "before", tmp_path / "after")
    moved = Emulator(tmp_path / "after")
    assert (moved.home / "cpus" / pi5.name / "usr" / "lib" / "ld-linux-aarch64.so.1").read_text() == "loader"
    # a prefix whose links lead elsewhere (made by an older version, absolute) is redone, not trusted
    stale = moved.home / "cpus" / pi5.name / "usr"
    stale.unlink()
    stale.symlink_to(tmp_path / "gone" / "usr")
    again = cpu_prefix(moved, pi5)
    assert (again / "usr").resolve() == (moved.root / "usr").resolve()
    assert (again / "usr" / "lib" / "ld-linux-aarch64.so.1").read_text() == "loader"
    assert sorted(p.name for p in again.parent.iterdir()) == [pi5.name]  # no staging left behind

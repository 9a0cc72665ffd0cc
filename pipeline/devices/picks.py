"""Which variant a device runs: the pick `report --device NAME` recorded for it, written into the copy deployed.

`report --device NAME` records its pick in metadata.json (`device_picks`) and leaves the folder's default alone.
`deploy` then sends that device a metadata.json whose `recommended` is its own pick: the one recorded under
the device's name, else the one for the emulated twin of its board (`report --device pi5` for a Raspberry
Pi 5), else the folder's default. The folder itself is never changed.
"""

from __future__ import annotations

import json

from edge_runtime.folder.reader import FolderMetadata

# The board a device reports (its /proc/device-tree/model) -> the emulated CPU that stands for it.
BOARDS = (
    ("Raspberry Pi 5", "pi5"),
    ("Raspberry Pi 4", "pi4"),
    ("Raspberry Pi 3", "pi3"),
    ("Raspberry Pi Zero 2", "pi3"),
)

# The board a device says it is, read by its own Python before anything is deployed.
BOARD = r"""
import json
model = ""
try:
    model = open("/proc/device-tree/model", "rb").read().decode("utf-8", "replace").strip("\x00").strip()
except OSError:
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("Model")), "")
    except OSError:
        pass
print(json.dumps({"board": model}))
"""


def pick_for(metadata: FolderMetadata, device: str, board: str | None) -> tuple[str | None, str]:
    """(the variant this device should run, why), or (None, why) when the folder's default stands."""
    if device in metadata.device_picks:
        return metadata.device_picks[device], f"the pick for {device} (report --device {device})"
    for prefix, alias in BOARDS:
        twin = f"emulated-{alias}"
        if board and board.startswith(prefix) and twin in metadata.device_picks:
            return metadata.device_picks[twin], f"the pick for an emulated {prefix} (report --device {alias})"
    return None, "the folder's default"


def with_pick(raw: bytes, pick: str) -> bytes:
    """metadata.json's bytes with `recommended` set to `pick` (the device's copy only)."""
    data = json.loads(raw)
    data["recommended"] = pick
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

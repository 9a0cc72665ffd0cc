"""A device's facts (what `edge_runtime device-facts` read there) as one line for tables and reports."""

from __future__ import annotations

from typing import Any


def describe(facts: dict[str, Any]) -> str:
    """`aarch64, Raspberry Pi 5 Model B Rev 1.0 (Cortex-A76), 4 cores, Debian ..., Python 3.11.2, litert 2.3.0`."""
    interpreter = facts.get("interpreter") or {}
    board = facts.get("model") or facts.get("cpu") or "unknown CPU"
    cpu = f" ({facts['cpu']})" if facts.get("model") and facts.get("cpu") else ""
    return (
        f"{facts.get('machine')}, {board}{cpu}, {facts.get('cores')} cores, {facts.get('os')}, "
        f"Python {facts.get('python')}, {interpreter.get('name')} {interpreter.get('version')}"
    )

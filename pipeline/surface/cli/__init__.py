"""The `edge-pipeline` command line: a thin Typer layer that parses options, calls the API, and prints.

`main` answers in one line when the training extra (Typer, TensorFlow) is not installed."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """`edge-pipeline`: the CLI, or one line saying what to install when the training extra is missing."""
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError as error:
        print(
            f"edge-pipeline: error: the training side is not installed ({error}); install it with "
            "`pip install 'edge-pipeline[train]'` (in a clone: `pip install -e '.[train]'`); edge-runtime needs only "
            "the device side",
            file=sys.stderr,
        )
        return 1
    from .app import main as run

    return run(argv)

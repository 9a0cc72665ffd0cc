"""`python -m pipeline ...` is the same as `edge-pipeline ...`."""

import sys

from .surface.cli import main

if __name__ == "__main__":
    sys.exit(main())

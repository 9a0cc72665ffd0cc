"""`python -m edge_runtime ...` is the same as `edge-runtime ...`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m grootvl_core ...``: see :mod:`grootvl_core.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m fma_sample``: see ``fma_sample.cli``."""

import sys

from fma_sample.cli import main

if __name__ == "__main__":
    sys.exit(main())

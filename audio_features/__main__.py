"""``python -m audio_features``: see ``audio_features.cli``."""

import sys

from audio_features.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m inference.launcher``: the command line (:func:`inference.launcher.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

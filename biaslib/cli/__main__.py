"""``python -m biaslib.cli``: the ``biaslib`` command."""

import sys

from biaslib.cli import main

if __name__ == "__main__":
    sys.exit(main())

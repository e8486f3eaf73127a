"""``python -m biaslib.cli``: the ``biaslib`` command."""

import sys

from biaslib.cli import main

sys.exit(main())

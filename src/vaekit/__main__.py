"""``python -m vaekit``: the same as the ``vaekit`` command."""

import sys

from vaekit.cli import main

sys.exit(main())

"""``python -m inbetweener``: the same as the ``inbetweener`` command."""

import sys

from inbetweener.cli import main

sys.exit(main())

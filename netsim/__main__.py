"""``python -m netsim ...``: the ``netsim`` command line."""

import sys

from netsim.cli import main

sys.exit(main())

"""``python -m netsim ...``: the ``netsim`` command line."""

from netsim.cli import entry

entry()

"""``python -m netsim ...``: the ``netsim`` command line."""

from netsim.cli import entry

if __name__ == "__main__":
    entry()

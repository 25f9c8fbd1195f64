"""Device hosts: the inline (in-process) and Ray backends of :mod:`netsim.kernel`.

netsim finds them through the ``netsim.backends`` entry points
(:mod:`netsim.backends`); nothing in netsim imports this package.
"""

from actors.host import HostCore
from actors.inline import InlineBackend

__all__ = ["HostCore", "InlineBackend"]

"""Device actors and their hosts: the inline (in-process) and Ray backends."""

from actors.dispatch import Backend, CallResult, Dispatcher, partition
from actors.host import HostCore, HostSetup, Inbox, Kernel, KernelCall, Outputs, Request
from actors.inline import InlineBackend

__all__ = [
    "Backend",
    "CallResult",
    "Dispatcher",
    "HostCore",
    "HostSetup",
    "Inbox",
    "InlineBackend",
    "Kernel",
    "KernelCall",
    "Outputs",
    "Request",
    "partition",
]

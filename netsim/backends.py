"""Where device hosts run: a small registry of backends.

The engine knows backends only through :class:`BackendFactory`. The backends
that ship with netsim (``inline`` and ``ray``, in the ``actors`` package)
are declared as entry points of the ``netsim.backends`` group in
``pyproject.toml``, so netsim finds them without importing ``actors`` (imports
run one way: ``actors -> netsim``). :func:`register` adds one from Python
(e.g. a test double).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType
from typing import Literal, Protocol

from netsim.assignment import Placement
from netsim.dispatch import Backend
from netsim.errors import InputError
from netsim.kernel import HostProgram, HostSetup

GROUP = "netsim.backends"
PER_DEVICE = "per-device"
Hosts = int | Literal["per-device"] | None


class BackendFactory(Protocol):
    """Starts the hosts of one run: ``hosts`` of them, one per device
    (:data:`PER_DEVICE`), or the backend's default (``None``), on the cluster
    at ``address`` where that means something. ``modules`` are scenario-file
    modules whose classes travel by value. ``placement`` says how devices are
    spread over hosts (:func:`netsim.assignment.assign_hosts`)."""

    def __call__(
        self,
        program: HostProgram,
        setup: HostSetup,
        *,
        hosts: Hosts,
        address: str | None,
        modules: list[ModuleType],
        placement: Placement = "graph",
    ) -> Backend: ...


_registered: dict[str, BackendFactory] = {}


def register(name: str, factory: BackendFactory) -> None:
    """Make ``factory`` available as backend ``name`` (replacing any other)."""
    _registered[name] = factory


def names() -> list[str]:
    """Every backend that can be asked for."""
    return sorted(set(_registered) | {ep.name for ep in entry_points(group=GROUP)})


def get(name: str) -> BackendFactory:
    """The factory of backend ``name``."""
    if name in _registered:
        return _registered[name]
    for ep in entry_points(group=GROUP, name=name):
        factory: BackendFactory = ep.load()
        _registered[name] = factory
        return factory
    raise InputError(f"--backend: expected one of {', '.join(names())}, got {name!r}")

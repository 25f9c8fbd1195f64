"""netsim: an actor-model simulator of decentralized learning networks.

>>> import netsim
>>> from netsim import scenario_file
>>> scenario = scenario_file.load("scenarios/consensus.py").build({"nodes": 10})
>>> result = netsim.run(scenario)          # doctest: +SKIP
>>> result.series("consensus_error")       # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from netsim.errors import InputError, SimulationError
from netsim.failures import Churn, Failures
from netsim.results import Result
from netsim.scenario import Scenario
from netsim.scenario_file import load as load_scenario
from netsim.traces import FailureEvent, read_trace

if TYPE_CHECKING:
    from netsim.runner import run


def __getattr__(name: str) -> Any:
    # the runner imports the actors package, which imports netsim: load it on first use
    if name == "run":
        from netsim.runner import run

        return run
    raise AttributeError(f"module 'netsim' has no attribute {name!r}")


__all__ = [
    "Churn",
    "FailureEvent",
    "Failures",
    "InputError",
    "Result",
    "Scenario",
    "SimulationError",
    "__version__",
    "load_scenario",
    "read_trace",
    "run",
]

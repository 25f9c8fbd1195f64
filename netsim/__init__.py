"""netsim: an actor-model simulator of decentralized learning networks.

>>> import netsim
>>> from netsim import scenario_file
>>> scenario = scenario_file.load("scenarios/consensus.py").build({"nodes": 10})
>>> result = netsim.run(scenario)          # doctest: +SKIP
>>> result.series("consensus_error")       # doctest: +SKIP
"""

__version__ = "0.1.0"

from netsim.algorithm import Algorithm, Final
from netsim.errors import InputError, SimulationError
from netsim.failures import Churn, Failures
from netsim.kernel import HostProgram, HostSetup, Inbox, KernelCall, Outputs, Payloads, Request
from netsim.results import Result, class_table, device_table, load_run
from netsim.runner import run
from netsim.scenario import Scenario
from netsim.scenario_file import load as load_scenario
from netsim.simulation import Simulation
from netsim.sweep import Sweep, load_sweep
from netsim.traces import FailureEvent, read_trace

__all__ = [
    "Algorithm",
    "Churn",
    "FailureEvent",
    "Failures",
    "Final",
    "HostProgram",
    "HostSetup",
    "Inbox",
    "InputError",
    "KernelCall",
    "Outputs",
    "Payloads",
    "Request",
    "Result",
    "Scenario",
    "Simulation",
    "SimulationError",
    "Sweep",
    "__version__",
    "class_table",
    "device_table",
    "load_run",
    "load_scenario",
    "load_sweep",
    "read_trace",
    "run",
]

"""Driver-side pieces shared by the server-based protocols: who the clients
are, what their training costs, and how models and updates travel along the
routing tree.

Sizes and contents of messages come from the hosts: the driver holds
references to them (:class:`~netsim.dispatch.PayloadSource`) and their
encoded sizes, never a model vector.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from algorithms.federated.codecs import Codec, Identity
from algorithms.federated.routing import Route
from algorithms.learning import LearningConfig, client_split, cost_table
from algorithms.participants import DATA_WEIGHT, FREE_RIDER, LABEL_NOISE, participants
from netsim.dispatch import PayloadSource, stack_sources
from netsim.errors import InputError
from netsim.kernel import Inbox, Request

if TYPE_CHECKING:
    from netsim.messages import MessageBatch
    from netsim.simulation import Computation, Simulation


@dataclass(eq=False)
class Message:
    """A model or update on its way: where its contents are, and its size."""

    source: PayloadSource  # one row
    nbytes: int
    prototype: str


@dataclass(eq=False)
class Update:
    """An update travelling up the tree: one client's, or an edge node's average."""

    clients: list[int]
    weight: float
    message: Message


class Federation:
    """The routing tree, the clients, their prototypes, data sizes and
    training costs (counted on each prototype's model)."""

    def __init__(
        self, sim: Simulation, learning: LearningConfig, server: int, up: Codec, down: Codec
    ) -> None:
        self.sim = sim
        self.learning = learning
        self.server = server
        self.up, self.down = up, down
        self.route = Route(sim.links, server)
        self.clients = self.route.clients
        self.prototype = learning.prototype_of(sim.nodes, self.clients)
        self.people = participants(sim.nodes, self.clients)
        split = client_split(learning, self.clients, self.prototype, sim.seed, self.people)
        self.public, self.validation = len(split.x_public), len(split.x_val)
        self.samples = {c: len(split.clients[k]) for k, c in enumerate(self.clients)}
        self.cost = cost_table(learning, split, sim.seed)
        # prototypes in use, smallest model first
        names = set(self.prototype.values())
        self.prototypes = sorted(names, key=lambda p: (self.cost[p].parameters, p))
        self.size = {p: self.cost[p].parameters for p in self.prototypes}
        self.train_flops = {  # free riders do not train
            c: 0.0
            if self.people[c].free_rider
            else learning.local_epochs * self.samples[c] * self.cost[self.prototype[c]].train_flops
            for c in self.clients
        }

    # ------------------------------------------------------------ requests
    def evaluate(self, version: int) -> Computation:
        """Test accuracy and loss of every prototype's global model (no time)."""
        server = np.array([self.server])
        return self.sim.compute(
            [
                Request("evaluate", server, params={"prototype": p, "version": version})
                for p in self.prototypes
            ]
        )

    def publish(
        self, version: int, prototypes: list[str], kind: str
    ) -> dict[str, tuple[Message, float]]:
        """Encode the server's models of ``version`` for the downlink, one job
        per prototype queued on the server. Returns each prototype's message
        and when its encoding is done."""
        sim, server = self.sim, np.array([self.server])
        comp = sim.compute(
            [
                Request(
                    "publish",
                    server,
                    params={"prototype": p, "version": version, "kind": kind, "size": self.size[p]},
                )
                for p in prototypes
            ]
        )
        out = {}
        for i, p in enumerate(prototypes):
            ready = float(sim.work(server, comp.reported_flops(i))[0])
            out[p] = (Message(comp.payload(i, "model"), int(comp.nbytes(i, "model")[0]), p), ready)
        return out

    def train(
        self, c: int, inbox: Inbox, kind_down: str, kind_up: str, send: str
    ) -> Generator[Any, Any, Update | None]:
        """Client ``c`` decodes the model in ``inbox``, trains, encodes its
        update (weights or the delta, as ``send`` says); ``None`` if it failed
        meanwhile."""
        sim, p = self.sim, self.prototype[c]
        start = sim.now
        request = Request(
            "train",
            np.array([c]),
            inputs={"train_flops": np.array([self.train_flops[c]])},
            params={"kind_down": kind_down, "kind_up": kind_up, "send": send, "size": self.size[p]},
            inbox=inbox,
        )
        comp = sim.compute([request])
        yield sim.timeout_until(float(comp.finish[0][0]))
        if sim.devices.failed_since(c, start):
            return None
        encoded = float(sim.work(c, comp.reported_flops(0))[0])
        yield sim.timeout_until(encoded)
        if sim.devices.failed_since(c, start):
            return None
        message = Message(comp.payload(0, "update"), int(comp.nbytes(0, "update")[0]), p)
        return Update([c], float(self.samples[c]), message)

    def gather(self, messages: list[Message]) -> Inbox:
        """One inbox holding ``messages`` (for a server or an edge node)."""
        source = stack_sources([(m.source, 0) for m in messages])
        k = len(messages)
        return Inbox.gather(1, source.data, np.arange(k), np.full(k, -1))

    # ------------------------------------------------------------ travel
    def hop(self, u: int, v: int, message: Message, t_queue: float | None = None) -> MessageBatch:
        """Send ``message`` over the link ``u -> v`` (queued now, or at ``t_queue``)."""
        sim = self.sim
        when = sim.now if t_queue is None else t_queue
        return sim.unicast(np.array([u]), np.array([v]), when, message.nbytes, message.source)

    def relay(
        self, path: list[int], message: Message, t_queue: float | None = None
    ) -> Generator[Any, Any, MessageBatch | None]:
        """Send ``message`` hop by hop along ``path`` (store and forward); the
        last hop's batch, or ``None`` if a hop dropped it."""
        sim = self.sim
        batch = None
        for i in range(len(path) - 1):
            batch = self.hop(path[i], path[i + 1], message, t_queue if i == 0 else None)
            yield sim.timeout_until(float(batch.t_arrive[0]))
            if not len(sim.delivered(batch)):
                return None
        return batch

    # ------------------------------------------------------------ checks
    def _hop_seconds(self, u: int, v: int, size: float) -> float:
        """A transfer of ``size`` bytes over ``u -> v`` with an empty queue."""
        net = self.sim.network
        e = int(self.sim.links.index(np.array([u]), np.array([v]))[0])
        return size / float(net.nominal_link_rate[e]) + float(net.nominal_latency_s[e])

    def fastest_round(self) -> tuple[float, float, float]:
        """The fastest any client could complete a round with empty queues:
        download, training, upload (messages at their uncompressed size with
        no codec, of no size with one: a lower bound)."""
        best, parts = math.inf, (0.0, 0.0, 0.0)
        for c in self.clients:
            raw = 4.0 * self.size[self.prototype[c]]
            down_bytes = raw if isinstance(self.down, Identity) else 0.0
            up_bytes = raw if isinstance(self.up, Identity) else 0.0
            path = self.route.path(c)  # [c, ..., server]
            hops = list(itertools.pairwise(path))
            down = sum(self._hop_seconds(b, a, down_bytes) for a, b in hops)
            up = sum(self._hop_seconds(a, b, up_bytes) for a, b in hops)
            train = self.train_flops[c] / self.sim.devices.nominal_compute_flops[c]
            if down + train + up < best:
                best, parts = down + train + up, (down, train, up)
        return parts

    def check_deadline(self, deadline: float | None) -> None:
        """A deadline that no client can ever meet is bad input."""
        if deadline is None:
            return
        down, train, up = self.fastest_round()
        if down + train + up > deadline:
            raise InputError(
                f"deadline_s={deadline:g}: no client can ever meet it; the fastest round takes "
                f"{down + train + up:.3g} s (download {down:.3g} s, training {train:.3g} s, "
                f"upload {up:.3g} s)"
            )


def check_federation(graph: nx.Graph, learning: LearningConfig, server: int, seed: int) -> None:
    """Before any host starts: the server exists and has clients, every node
    has a prototype the config names, and each prototype's model fits the data."""
    from netsim.link_table import LinkTable

    if server not in graph:
        raise InputError(f"server: node {server} is not in the topology")
    clients = Route(LinkTable.from_graph(graph), server).clients
    if not clients:
        raise InputError(f"server {server}: has no clients (no leaf of its routing tree)")
    names = np.empty(graph.number_of_nodes(), dtype=object)
    names[:] = [graph.nodes[k].get("prototype") for k in range(graph.number_of_nodes())]
    prototype = learning.prototype_of({"prototype": names}, clients)
    people = participants(_attributes(graph), clients)
    learning.check_fit(client_split(learning, clients, prototype, seed, people), seed)


def _attributes(graph: nx.Graph) -> dict[str, np.ndarray]:
    """The participants' node attributes as arrays over the nodes (``None`` where absent)."""
    out = {}
    for name in (DATA_WEIGHT, LABEL_NOISE, FREE_RIDER):
        values = np.empty(graph.number_of_nodes(), dtype=object)
        values[:] = [graph.nodes[k].get(name) for k in range(graph.number_of_nodes())]
        out[name] = values
    return out

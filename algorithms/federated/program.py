"""The host program of the server-based family (FedAvg, FedBuff, FedCode):
device state and kernels, shared by every method built on it.

Each host keeps

- a :class:`~algorithms.learner.Learner`: its clients' data shards and one
  scratch model per prototype;
- per client: the weights it holds (what it last received, trained and
  quantized) and its codec memory (error feedback);
- on the server's host: the global model of every prototype by *version*
  (explicit versions keep the host's eager work consistent with the clock:
  a model published at a given virtual time is the version the driver
  names, whatever the host has computed since). Each new version drops those
  older than the request's ``keep_from``, the oldest the driver may still
  publish or build on.

Kernels (declared costs in :meth:`FederatedProgram.cost`; work whose FLOPs
depend on what the kernel drew or met (k-means iterations of an encoder, the
random widths of sandwich training) is reported by the kernel as
``reported_flops`` and queued by the driver after the job):

============  ==========  ====================================================
``evaluate``  server      test accuracy and loss of a version (measurement)
``publish``   server      a version, encoded for the downlink: ``model``
``train``     clients     decode the received model, train, encode ``update``
``partial``   edge nodes  average the updates heard, re-encode one ``update``
``aggregate`` server      FedAvg / FedCode: the next version from the updates
``apply``     server      FedBuff: the next version from buffered deltas
``transfer``  server      FedDF / TAKFL: the next versions of every prototype,
                          with knowledge transferred between them
``standalone``  clients   each trains alone from the initial model; its test
                          accuracy (the baseline Aequa is judged against)
``rewards``   server      Aequa: each client's reward width and its accuracy
                          (measurement, at the end)
============  ==========  ====================================================

Clients behave as their node attributes say (:mod:`algorithms.participants`):
free riders return what they received (or it plus noise) without training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from algorithms.federated import aggregation
from algorithms.federated.codecs import Codebook, Codec, Encoded
from algorithms.federated.rewards import allocate, loo_cosines
from algorithms.federated.routing import Route
from algorithms.federated.transfer import TransferConfig, transfer, transfer_flops
from algorithms.learner import Learner
from algorithms.learning import LearningConfig
from algorithms.participants import FREE_RIDER_NOISE, Participant, participants
from netsim.kernel import HostSetup, Kernel, KernelCall, Outputs, Payloads, Request
from netsim.link_table import LinkTable


@dataclass
class FederatedState:
    learner: Learner
    held: dict[int, np.ndarray] = field(default_factory=dict)
    memory: dict[int, np.ndarray | None] = field(default_factory=dict)
    versions: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)  # server only


@dataclass(frozen=True)
class FederatedProgram:
    """Host program for a server at node ``server`` with codecs ``up`` (client
    to server) and ``down`` (server to client)."""

    learning: LearningConfig
    server: int
    up: Codec
    down: Codec
    transfer: TransferConfig | None = None  # FedDF / TAKFL
    p_min: float | None = None  # Aequa: sandwich training of a slimmable model

    # ------------------------------------------------------------ state
    def init_state(self, setup: HostSetup, rngs: list[np.random.Generator]) -> FederatedState:
        links = LinkTable.from_arrays(setup.n_nodes, setup.link_src, setup.link_dst)
        clients = np.array(Route(links, self.server).clients, dtype=np.int64)
        prototypes = self.learning.prototype_of(setup.nodes, clients)
        people = participants(setup.nodes, clients)
        learner = Learner(self.learning, setup.seed, setup.devices, clients, prototypes, people)
        state = FederatedState(learner)
        if self.server in set(setup.devices.tolist()):
            state.versions = {(p, 0): v.copy() for p, v in learner.initial.items()}
        return state

    def kernel(self, name: str) -> Kernel:
        kernels: dict[str, Kernel] = {
            "evaluate": self._evaluate,
            "publish": self._publish,
            "train": self._train,
            "partial": self._partial,
            "aggregate": self._aggregate,
            "apply": self._apply,
            "transfer": self._transfer,
            "rewards": self._rewards,
            "standalone": self._standalone,
        }
        return kernels[name]

    def reset(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        """A client forgets what it held; a server loses its models and starts
        over from the initial ones."""
        for d in call.devices.tolist():
            state.held.pop(d, None)
            state.memory.pop(d, None)
            if d == self.server:
                for p, v in list(state.versions):
                    state.versions[(p, v)] = state.learner.initial[p].copy()
        return state, {}

    def cost(self, request: Request) -> np.ndarray:
        """FLOPs of a request, from its parameters and the messages it carries."""
        n = len(request.devices)
        params, kernel = request.params, request.kernel
        if kernel == "standalone":
            return np.asarray(request.inputs["train_flops"], dtype=float)
        if kernel == "train":
            decode = self.down.decode_flops(int(params["size"]), str(params["kind_down"]))
            return np.asarray(request.inputs["train_flops"], dtype=float) + decode
        if kernel == "transfer":
            assert self.transfer is not None
            return np.full(n, transfer_flops(self.transfer, params))
        if kernel in ("partial", "aggregate", "apply"):
            assert request.inbox is not None
            heard = request.inbox.counts().astype(float)
            size = int(params["size"])
            if kernel == "aggregate" and params["kind_up"] == "codebook":
                k = self.up.clusters if isinstance(self.up, Codebook) else 1
                return np.array([aggregation.pooled_snap_flops(size, int(h), k) for h in heard])
            per_message = self.up.decode_flops(size, "model") + aggregation.average_flops(size, 1)
            once = 0.0
            if params.get("contributions"):
                # a leave-one-out cosine each (three dot products); the old
                # and the new model on the validation split
                per_message += 6.0 * size
                once = 2.0 * float(params["validation_flops"])
            return np.asarray(heard * per_message + once * (heard > 0), dtype=float)
        return np.zeros(n)

    def payload_nbytes(self, request: Request) -> dict[str, np.ndarray] | None:
        """Message sizes before the kernel runs, where the codec's do not
        depend on the values (``publish``, ``train`` and ``partial``)."""
        known = self._known_costs(request)
        return None if known is None else {known[0]: known[1]}

    def reported_flops(self, request: Request) -> np.ndarray | None:
        """The encoding FLOPs ``publish``, ``train`` and ``partial`` will
        report, where the codec's do not depend on the values (and, for
        ``train``, no sandwich training)."""
        known = self._known_costs(request)
        return None if known is None else known[2]

    def _known_costs(self, request: Request) -> tuple[str, np.ndarray, np.ndarray] | None:
        n, params = len(request.devices), request.params
        if request.kernel == "publish" and "size" in params:
            size, kind = int(params["size"]), str(params["kind"])
            known = self.down.known_cost(size, kind)
            if known is None:
                return None
            return "model", np.full(n, known[0], dtype=np.int64), np.full(n, known[1])
        if request.kernel == "partial":  # an edge node's average, encoded
            known = self.up.known_cost(int(params["size"]), "model")
            if known is None:
                return None
            return "update", np.full(n, known[0], dtype=np.int64), np.full(n, known[1])
        if request.kernel == "train" and self.p_min is None:
            size, kind = int(params["size"]), str(params["kind_up"])
            known = self.up.known_cost(size, kind)
            if known is None:
                return None
            flops = known[1]
            if self.up.target == "weights":  # the client decodes what it sent
                flops += self.up.decode_flops(size, kind)
            return "update", np.full(n, known[0], dtype=np.int64), np.full(n, flops)
        return None

    # ------------------------------------------------------------ kernels
    def _evaluate(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        p, v = str(call.params["prototype"]), int(call.params["version"])
        accuracy, loss = state.learner.evaluate(p, state.versions[(p, v)])
        return state, {"accuracy": np.array([accuracy]), "loss": np.array([loss])}

    def _publish(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        p, v = str(call.params["prototype"]), int(call.params["version"])
        rng = call.rngs[int(call.idx[0])]
        message, _, flops = self.down.encode(state.versions[(p, v)], None, rng, call.params["kind"])
        return state, {
            "model": Payloads.objects([message], [message.nbytes]),
            "reported_flops": np.array([flops]),
        }

    def _train(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        assert call.inbox is not None
        learner, send = state.learner, str(call.params["send"])
        kind_up = str(call.params["kind_up"])
        messages, flops = [], np.zeros(len(call.devices))
        for i, d in enumerate(call.devices.tolist()):
            initial = learner.initial[learner.prototype[d]]
            received = self.down.decode(call.inbox.messages(i)[0], state.held.get(d, initial))
            rng = call.rngs[int(call.idx[i])]
            trained, flops[i] = self._local_step(learner, d, received, rng)
            x = trained - received if send == "delta" else trained
            message, state.memory[d], encode = self.up.encode(x, state.memory.get(d), rng, kind_up)
            flops[i] += encode
            if self.up.target == "weights":  # it keeps the weights it sent, as the server sees them
                state.held[d] = self.up.decode(message, trained)
                flops[i] += self.up.decode_flops(len(x), kind_up)
            else:
                state.held[d] = trained
            messages.append(message)
        samples = np.array([learner.samples(d) for d in call.devices.tolist()], dtype=float)
        return state, {
            "update": Payloads.objects(messages, [m.nbytes for m in messages]),
            "reported_flops": flops,
            "samples": samples,
        }

    def _local_step(
        self, learner: Learner, d: int, received: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, float]:
        """What client ``d`` makes of the model it received, and the FLOPs of
        it beyond the declared training (sandwich training's random widths)."""
        rider = learner.people[d].free_rider if d in learner.people else ""
        if rider == "copy":
            return received.copy(), 0.0
        if rider == "noise":
            noise = rng.normal(0.0, FREE_RIDER_NOISE, len(received)).astype(np.float32)
            return received + noise, 0.0
        if self.p_min is not None:
            return learner.train_sandwich(d, received, self.p_min)
        return learner.train(d, received), 0.0

    def _decoded(self, messages: np.ndarray) -> np.ndarray:
        return np.array([self.up.decode(m, None) for m in messages], dtype=np.float32)

    def _partial(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        assert call.inbox is not None
        weights = np.asarray(call.params["weights"], dtype=float)
        average = aggregation.weighted_average(self._decoded(call.inbox.messages(0)), weights)
        rng = call.rngs[int(call.idx[0])]
        message, _, flops = self.up.encode(average, None, rng, "model")
        return state, {
            "update": Payloads.objects([message], [message.nbytes]),
            "reported_flops": np.array([flops]),
        }

    def _aggregate(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        assert call.inbox is not None
        p = str(call.params["prototype"])
        base = state.versions[(p, int(call.params["base"]))]
        messages: list[Encoded] = list(call.inbox.messages(0))
        if not messages:
            new = base.copy()
        elif call.params["kind_up"] == "codebook":
            new = aggregation.pooled_codebook_snap(base, [m.arrays[0] for m in messages])
        else:
            vectors = self._decoded(np.array(messages, dtype=object))
            if call.params["send"] == "delta":
                vectors = vectors + base
            new = aggregation.weighted_average(vectors, np.asarray(call.params["weights"]))
            if call.params.get("contributions"):
                weights = np.asarray(call.params["weights"], dtype=float)
                learner = state.learner
                before = learner.evaluate(p, base, on="validation")[1]
                state, out = self._store(state, call, p, new)
                out["cosine"] = loo_cosines(vectors - base, weights)[None, :]
                out["improvement"] = np.array(
                    [before - learner.evaluate(p, new, on="validation")[1]]
                )
                return state, out
        return self._store(state, call, p, new)

    def _apply(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        assert call.inbox is not None
        p = str(call.params["prototype"])
        base = state.versions[(p, int(call.params["base"]))]
        deltas = self._decoded(call.inbox.messages(0))
        weights = np.asarray(call.params["weights"], dtype=float)
        new = aggregation.buffered_step(base, deltas, weights, float(call.params["server_lr"]))
        return self._store(state, call, p, new)

    def _transfer(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        if self.transfer is None:
            raise RuntimeError("this program has no knowledge transfer configured")
        return transfer(state, call, self.transfer, self.up.decode)

    def _standalone(
        self, state: FederatedState, call: KernelCall
    ) -> tuple[FederatedState, Outputs]:
        learner, accuracy = state.learner, np.zeros(len(call.devices))
        for i, d in enumerate(call.devices.tolist()):
            p = learner.prototype[d]
            vector = learner.initial[p]
            if not learner.people.get(d, Participant()).free_rider:
                for _ in range(int(call.params["rounds"])):
                    vector = learner.train(d, vector)
            accuracy[i] = learner.evaluate(p, vector)[0]
        return state, {"accuracy": accuracy}

    def _rewards(self, state: FederatedState, call: KernelCall) -> tuple[FederatedState, Outputs]:
        p, v = str(call.params["prototype"]), int(call.params["version"])
        model, learner = state.versions[(p, v)], state.learner
        widths = np.asarray(call.params["widths"], dtype=float)
        curve = np.array([learner.evaluate(p, model, w, on="validation")[0] for w in widths])
        given = allocate(
            np.asarray(call.params["contributions"], dtype=float),
            widths,
            curve,
            np.asarray(call.params["floor"], dtype=float),
        )
        test = {w: learner.evaluate(p, model, w)[0] for w in set(given.tolist()) | set(widths)}
        return state, {
            "curve_validation": curve[None, :],
            "curve_test": np.array([[test[w] for w in widths]]),
            "reward_width": given[None, :],
            "reward_accuracy": np.array([[test[w] for w in given]]),
        }

    def _store(
        self, state: FederatedState, call: KernelCall, p: str, model: np.ndarray
    ) -> tuple[FederatedState, Outputs]:
        """Keep ``model`` as the new version (dropping those the driver no
        longer needs) and evaluate it."""
        version, keep_from = int(call.params["version"]), int(call.params["keep_from"])
        state.versions[(p, version)] = model
        for key in [k for k in state.versions if k[0] == p and k[1] < keep_from]:
            del state.versions[key]
        accuracy, loss = state.learner.evaluate(p, model)
        return state, {"accuracy": np.array([accuracy]), "loss": np.array([loss])}

"""The metric log of a run: long-format rows (time, step, node, metric,
value; node -1 = the network) as a protocol records them.

Single values (:meth:`MetricLog.add`) go to small Python lists; per-node
vectors (:meth:`MetricLog.extend`) are kept as numpy blocks, 16 bytes a row
(a row in Python lists costs about 120), so that per-node metrics of a
million devices cost what their arrays do. :meth:`MetricLog.frame` gives the
rows in the order they were recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class _Block:
    """Rows recorded together: ``time``, ``step`` and ``metric`` are one value
    for the block (a vector) or arrays (single rows gathered)."""

    time: float | np.ndarray
    step: int | np.ndarray
    node: np.ndarray
    metric: str | np.ndarray
    value: np.ndarray


class MetricLog:
    """Long-format metric rows: time, step, node (-1 = network), metric, value."""

    def __init__(self) -> None:
        self._blocks: list[_Block] = []
        self._time: list[float] = []  # single rows since the last block
        self._step: list[int] = []
        self._node: list[int] = []
        self._metric: list[str] = []
        self._value: list[float] = []
        self._rows = 0  # in blocks
        self.last_step = 0  # the largest step recorded (0 when none)

    def __len__(self) -> int:
        return self._rows + len(self._time)

    def add(self, time: float, step: int, node: int, metric: str, value: float) -> None:
        self._time.append(float(time))
        self._step.append(int(step))
        self._node.append(int(node))
        self._metric.append(metric)
        self._value.append(float(value))
        self.last_step = max(self.last_step, int(step))

    def extend(
        self, time: float, step: int, nodes: np.ndarray, metric: str, values: np.ndarray
    ) -> None:
        """One row per node of ``nodes``: ``values`` (one per node, or one for all)."""
        nodes = np.array(nodes, dtype=np.int64)  # a copy: later changes do not leak in
        k = len(nodes)
        values = np.array(np.broadcast_to(np.asarray(values, dtype=float), (k,)))
        self._flush()
        self._blocks.append(_Block(float(time), int(step), nodes, metric, values))
        self._rows += k
        if k:
            self.last_step = max(self.last_step, int(step))

    def _flush(self) -> None:
        """Turn the single rows so far into a block."""
        if not self._time:
            return
        metric = np.empty(len(self._metric), dtype=object)
        metric[:] = self._metric
        self._blocks.append(
            _Block(
                np.array(self._time, dtype=np.float64),
                np.array(self._step, dtype=np.int64),
                np.array(self._node, dtype=np.int64),
                metric,
                np.array(self._value, dtype=np.float64),
            )
        )
        self._rows += len(self._time)
        self._time, self._step, self._node, self._metric, self._value = [], [], [], [], []

    def frame(self) -> pd.DataFrame:
        """All rows, in the order recorded, as a DataFrame (metric names as objects)."""
        self._flush()
        n = self._rows
        time, step = np.empty(n, dtype=np.float64), np.empty(n, dtype=np.int64)
        node, value = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64)
        metric = np.empty(n, dtype=object)
        at = 0
        for b in self._blocks:
            rows = slice(at, at + len(b.node))
            time[rows], step[rows], node[rows], metric[rows], value[rows] = (
                b.time,
                b.step,
                b.node,
                b.metric,
                b.value,
            )
            at += len(b.node)
        return pd.DataFrame(
            {
                "time": time,
                "step": step,
                "node": node,
                "metric": pd.array(metric, dtype=object),
                "value": value,
            }
        )

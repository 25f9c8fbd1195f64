"""Split computing for multi-task inference (papers.md section 6, "Ladon").

- :mod:`~algorithms.split.shapes`: the procedural multi-task image set
  (class, box and mask of one shape per image);
- :mod:`~algorithms.split.models`, :mod:`~algorithms.split.entropy`,
  :mod:`~algorithms.split.training`: the teacher, the on-device models and
  the split model with its learned, entropy-coded bottleneck; trained once
  and cached;
- :mod:`~algorithms.split.image_codecs`: PNG and JPEG for full offloading;
- :mod:`~algorithms.split.modes`: what each mode sends and computes where;
- :mod:`~algorithms.split.workload`: request arrivals and per-request records;
- :mod:`~algorithms.split.inference`: the algorithm, :class:`SplitInference`.
"""

from __future__ import annotations

from algorithms.split.inference import MODES, SplitInference
from algorithms.split.training import DEFAULT, TINY, SplitTraining

PRESETS: dict[str, SplitTraining] = {"default": DEFAULT, "tiny": TINY}

__all__ = ["MODES", "PRESETS", "SplitInference", "SplitTraining"]

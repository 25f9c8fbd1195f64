"""Where results go: checks made before any work, so that a bad output path
is one line of error and nothing written, and the permissions results get.

- :func:`check_writable`: the path can be created (its nearest existing
  ancestor is a directory netsim can create entries in), probed by creating
  and removing a temporary directory there;
- :func:`refuse_existing`: an existing output is replaced only when asked
  (``--force``);
- :func:`atomic_file`, :func:`write_atomic`: write beside the target, then
  rename (a reader never sees half a file; an interrupted write leaves none);
- :func:`umask_mode`: the mode a new directory gets from the umask
  (``tempfile`` makes private ones);
- :func:`terminated`: SIGTERM raises :class:`Terminated`, so that an
  interrupted write cleans up its temporary files like Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netsim.errors import InputError

# A run's topology.graphml is written by default up to this many directed
# links; beyond, nodes.parquet and links.parquet alone hold the graph.
# nx.write_graphml costs about 80 us a link (measured, bench/bench_outputs.py:
# 1.7 s at 20,000 links, 15 s at 200,000, 31 s at 400,000), the two tables
# about 1 us (0.35 s at 400,000 links, metrics included).
GRAPHML_MAX_LINKS = 20_000


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt: cleanups run)."""


_sigterm = threading.Event()  # SIGTERM arrived within terminated()


def _raise_terminated(signum: int, frame: Any) -> None:
    _sigterm.set()
    raise Terminated


def check_terminated() -> None:
    """Raise :class:`Terminated` again if SIGTERM arrived and the run goes
    on: the handler's exception is lost when it lands in a garbage
    collector's finalizer (Python ignores exceptions there), and Ray's
    hosts free their payloads through such finalizers every round. The
    engine calls this as a run progresses; the lost exception is not
    printed."""
    if _sigterm.is_set():
        raise Terminated


@contextlib.contextmanager
def terminated() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Terminated` (in the main thread only,
    where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _sigterm.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_hook = sys.unraisablehook

    def quiet_when_terminated(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, Terminated):  # (raised again later)
            previous_hook(unraisable)

    sys.unraisablehook = quiet_when_terminated
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        _sigterm.clear()


def check_writable(path: Path, flag: str) -> None:
    """InputError naming ``flag`` unless ``path`` (and its missing parents)
    can be created."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{flag} {path}: {ancestor} is not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=".netsim-probe-", dir=ancestor)
        os.rmdir(probe)
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot write in {ancestor} ({e.strerror})") from None


def refuse_existing(path: Path, flag: str, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{flag} {path}: exists; pass --force to replace it")


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` (with
    the umask's permissions) when the block ends, removed if it raises.
    Parent directories are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & umask_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary file and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def umask_mode() -> int:
    """Permissions of a new directory under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask

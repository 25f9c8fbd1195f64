"""Where results go: checks made before any work, so that a bad output path
is one line of error and nothing written, and the permissions results get.

- :func:`check_writable`: the path can be created (its nearest existing
  ancestor is a directory netsim can create entries in), probed by creating
  and removing a temporary directory there;
- :func:`refuse_existing`: an existing output is replaced only when asked
  (``--force``);
- :func:`umask_mode`: the mode a new directory gets from the umask
  (``tempfile`` makes private ones);
- :func:`terminated`: SIGTERM raises :class:`Terminated`, so that an
  interrupted write cleans up its temporary files like Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netsim.errors import InputError


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt: cleanups run)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def terminated() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Terminated` (in the main thread only,
    where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def umask_mode() -> int:
    """Permissions of a new directory under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask

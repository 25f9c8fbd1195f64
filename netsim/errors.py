"""The two kinds of failure a user can meet.

`InputError` is bad input (a scenario parameter, a topology or trace file, a CLI
flag): the CLI prints its message on one line and exits with status 2, before
anything is written. `SimulationError` is a run that could not finish (a Ray
host died): one line, exit status 1.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input. The message names the file, line or field and what was expected."""


class SimulationError(RuntimeError):
    """A run that could not be completed for a reason other than bad input."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none),
    for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

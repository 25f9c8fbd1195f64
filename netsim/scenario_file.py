"""Scenario files: a Python file defining ``scenario(**params) -> netsim.Scenario``.

Every keyword argument of ``scenario`` must have a default; its annotation (or
the type of its default) says how ``--set name=value`` text is read: ``int``,
``float``, ``str``, ``bool``, ``Literal[...]`` (a fixed set of choices) and
``X | None`` (``none`` gives ``None``).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from netsim.errors import InputError
from netsim.provenance import scenario_origin
from netsim.scenario import Scenario

MODULE_PREFIX = "_netsim_scenario_"
MAX_INT = 2**53  # beyond this an integer parameter is surely a typo (and floats lose it)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Parameter:
    """A scenario parameter: its default, base type, allowed values and whether
    ``None`` is allowed."""

    name: str
    default: Any
    kind: type
    choices: tuple[Any, ...] | None = None
    optional: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            kind = "|".join(str(c) for c in self.choices)
        else:
            kind = self.kind.__name__
        return f"{kind}{' or none' if self.optional else ''}"

    def parse(self, text: str) -> Any:
        """Read ``--set`` text as this parameter's type."""
        where = f"--set {self.name}={text}"
        if self.optional and text.strip().lower() in ("none", "null"):
            return None
        value: Any
        if self.kind is bool:
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise InputError(f"{where}: expected true or false")
            value = low in _TRUE
        elif self.kind is int:
            try:
                value = int(text)
            except ValueError:
                raise InputError(f"{where}: expected an integer") from None
            if abs(value) > MAX_INT:
                raise InputError(f"{where}: expected an integer of at most {MAX_INT:,} in size")
        elif self.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"{where}: expected a number") from None
            if math.isnan(value):
                raise InputError(f"{where}: expected a number, not NaN")
        else:
            value = text
        if self.choices is not None and value not in self.choices:
            options = ", ".join(str(c) for c in self.choices)
            raise InputError(f"{where}: expected one of {options}")
        return value

    def check(self, value: Any) -> Any:
        """Check a value given from Python (``ScenarioFile.build``)."""
        if value is None and self.optional:
            return value
        ok = isinstance(value, self.kind) and not (
            self.kind is not bool and isinstance(value, bool)
        )
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and self.kind is float and math.isnan(value):
            ok = False
        if ok and self.kind is int and abs(value) > MAX_INT:
            ok = False
        if not ok:
            raise InputError(f"{self.name}: expected {self.describe()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.name}: expected one of {self.describe()}, got {value!r}")
        return value


@dataclass(frozen=True)
class ScenarioFile:
    path: Path
    module: types.ModuleType
    parameters: dict[str, Parameter]

    @property
    def doc(self) -> str:
        doc = inspect.getdoc(self.module) or inspect.getdoc(self.module.scenario) or ""
        return first_sentence(doc)

    def parse_assignments(self, items: list[str]) -> dict[str, Any]:
        """``["name=value", ...]`` -> typed values (each name at most once)."""
        values: dict[str, Any] = {}
        for item in items:
            name, sep, text = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise InputError(f"--set {item}: expected name=value")
            if name in values:
                raise InputError(f"--set {name}: given twice")
            values[name] = self.parameter(name).parse(text)
        return values

    def parameter(self, name: str) -> Parameter:
        try:
            return self.parameters[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.parameters, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(self.parameters)
            raise InputError(
                f"{self.path}: unknown parameter {name!r}{hint} (parameters: {known})"
            ) from None

    def build(self, overrides: Mapping[str, Any] | None = None) -> Scenario:
        """Call ``scenario(**params)`` with defaults overridden; the returned
        scenario records every parameter value."""
        params = {name: p.default for name, p in self.parameters.items()}
        for name, value in (overrides or {}).items():
            params[name] = self.parameter(name).check(value)
        try:
            scenario = self.module.scenario(**params)
        except InputError:
            raise
        except Exception as e:  # a scenario file's own code rejected the values
            raise InputError(f"{self.path}: scenario() raised {type(e).__name__}: {e}") from e
        if not isinstance(scenario, Scenario):
            kind = type(scenario).__name__
            raise InputError(f"{self.path}: scenario() returned {kind}, expected netsim.Scenario")
        return replace(scenario, params=params, origin=scenario_origin(self.path))


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring, whole, with reStructuredText roles
    and literals shown as plain text."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], paragraph)
    text = text.replace("``", "").replace("`", "")
    end = re.search(r"(?<=[.!?])\s(?=[A-Z(])", text)
    return text[: end.start()] if end else text


def load(path: str | Path) -> ScenarioFile:
    """Import a scenario file and read its parameters."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: scenario file not found")
    if path.suffix != ".py":
        raise InputError(f"{path}: a scenario file is a Python file (.py)")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"{MODULE_PREFIX}{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: cannot load as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except InputError:
        raise
    except SyntaxError as e:
        del sys.modules[name]
        raise InputError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        del sys.modules[name]
        raise InputError(f"{path}: importing failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, "scenario", None)
    if not callable(fn):
        raise InputError(f"{path}: defines no function scenario(**params)")
    return ScenarioFile(path, module, _parameters(path, fn))


def _parameters(path: Path, fn: Any) -> dict[str, Parameter]:
    hints = typing.get_type_hints(fn)
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            raise InputError(f"{path}: scenario() parameter {p.name!r} has no default")
        out[p.name] = _parameter(path, p.name, p.default, hints.get(p.name))
    return out


def _parameter(path: Path, name: str, default: Any, hint: Any) -> Parameter:
    optional = False
    if hint is not None:
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
            optional = True
            rest = [a for a in args if a is not type(None)]
            hint = rest[0] if len(rest) == 1 else None
    if hint is not None and typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        return Parameter(name, default, type(choices[0]), choices, optional)
    if hint in (int, float, str, bool):
        return Parameter(name, default, hint, None, optional or default is None)
    if hint is None and default is not None and type(default) in (int, float, str, bool):
        return Parameter(name, default, type(default), None, optional)
    raise InputError(
        f"{path}: scenario() parameter {name!r}: annotate it as int, float, str, bool, "
        "Literal[...] or X | None"
    )

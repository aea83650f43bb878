"""Frozen dataclass configs loaded from YAML/JSON/dicts with strict key checking."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A config file or mapping has an unknown key or a bad value."""


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file into a dict, with an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def check_keys(cls: type, data: dict[str, Any], where: str) -> None:
    """Raise ConfigError naming the first unknown key and the closest known one."""
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint} (known: {', '.join(known)})")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(non_none[0], value, where)
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value)) if args else tuple(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {'a number' if tp is float else tp.__name__}, got {value!r}")
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    if tp is Path:
        return Path(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types are errors naming the field."""
    check_keys(cls, data, where)
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass → plain JSON/YAML-friendly structures (tuples become lists, Paths strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def resolve_config(cls: type[C], overrides: dict[str, Any], path: str | Path | None = None, *,
                   resume_from: str | Path | None = None) -> C:
    """The one way a command's config is resolved: ``cls``'s defaults ← the run's saved config ``resume_from``
    (when continuing a run) ← the YAML/JSON file ``path`` ← ``overrides`` (command-line values); later wins.

    Unknown keys are ConfigErrors naming the file and the closest known key; a run to resume whose saved
    config is missing is an error (never a fresh run with the defaults).
    """
    layers: list[tuple[dict[str, Any], str]] = []
    if resume_from is not None:
        saved = Path(resume_from)
        if not saved.is_file():
            raise FileNotFoundError(f"nothing to resume in {saved.parent}: {saved} not found")
        layers.append((load_mapping(saved), str(saved)))
    if path is not None:
        layers.append((load_mapping(path), str(path)))
    merged: dict[str, Any] = {}
    for data, where in layers:
        check_keys(cls, data, where=where)
        merged.update(data)
    merged.update(overrides)
    where = " with ".join([w for _, w in layers] + (["the arguments"] if overrides else [])) or "config"
    return from_dict(cls, merged, where=where)


def field_help(cls: type) -> dict[str, str]:
    """Each field's comment in ``cls``'s source (``name: type = default  # what it is``, continued on the next
    comment-only lines): the help texts of the command-line options generated from a config."""
    import inspect
    import re

    out: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        current = None
        for line in lines:
            m = re.match(r"\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$", line)
            if m and m[1] in names:
                current = m[1]
                out[current] = (m[2] or "").strip()
                continue
            c = re.match(r"\s+#\s{3,}(.*)$", line)  # a continuation is indented under the comment above
            if c and current is not None and out.get(current):
                out[current] += " " + c[1].strip()
            else:
                current = None
    return out


def positive(name: str, value: int | float | None, allow_zero: bool = False) -> None:
    """``value`` must be > 0 (>= 0 with ``allow_zero``); None passes (an optional field left unset)."""
    if value is not None and value < (0 if allow_zero else 1e-300 if isinstance(value, float) else 1):
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def pair(name: str, value: Any) -> tuple[int, int]:
    """A size (H, W) of two positive integers, or a ConfigError naming ``name``."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) or min(value) < 1):
        raise ConfigError(f"{name} must be (H, W) of two positive integers, got {value}")
    return int(value[0]), int(value[1])

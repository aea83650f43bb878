"""Command-line options generated from a config dataclass: one ``--field-name`` per field, its type, its comment
as help and its default written once (in the dataclass), plus the option groups several commands share."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Iterable

import yaml

from squeezenas.utils.config import ConfigError, field_help

DATA_OPTION = "data_option"  # dest of the repeatable --data-option KEY=VALUE (the field data_options)


def add_config_options(p: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
                       help: dict[str, str] | None = None, metavars: dict[str, tuple[str, ...]] | None = None) -> None:
    """One option per field of ``cls`` (except ``skip``), named after the field, its dest the field's name.

    Options that are not given stay out of the namespace (``argument_default=SUPPRESS``), so only what the
    user typed overrides a config file or a saved run. ``help`` replaces a field's help text; ``metavars`` names
    the values of pair fields (default H W for integer pairs, LOW HIGH for others).
    """
    p.argument_default = argparse.SUPPRESS
    skip, help, metavars = set(skip), help or {}, metavars or {}
    comments = field_help(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        text = help.get(f.name, comments.get(f.name, "")).replace("%", "%%")
        default = _default(f)
        if default not in (dataclasses.MISSING, None, "", {}) and f.name not in help:
            text = f"{text} (default: {_show(default)})" if text else f"default: {_show(default)}"
        tp = _strip_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        if f.name == "data_options":
            p.add_argument("--data-option", action="append", metavar="KEY=VALUE", dest=DATA_OPTION,
                           help="extra dataset argument, YAML value (e.g. num_samples=64, size=[64,128]); repeatable")
        elif tp is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
        elif typing.get_origin(tp) is tuple:
            args = typing.get_args(tp)
            kind = args[0] if args else str
            names = metavars.get(f.name, ("H", "W") if kind is int else ("LOW", "HIGH"))
            p.add_argument(flag, type=kind, nargs=len(args), metavar=names, help=text)
        elif tp in (int, float, str):
            p.add_argument(flag, type=tp, help=text)
        else:
            p.add_argument(flag, type=yaml.safe_load, help=f"{text} (YAML value)")


def overrides_from(args: argparse.Namespace, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The config fields given on the command line; ``--data-option`` items become ``data_options``."""
    skip = {"command", "config", *skip}
    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in skip}
    if DATA_OPTION in given:
        given["data_options"] = parse_data_options(given.pop(DATA_OPTION))
    return given


def parse_data_options(items: list[str]) -> dict[str, Any]:
    """``["size=[64,128]", "num_samples=8"]`` → ``{"size": [64, 128], "num_samples": 8}``."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--data-option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options


def config_file_option(p: argparse.ArgumentParser, cls: type) -> None:
    p.add_argument("--config", default=None, help=f"YAML/JSON file of {cls.__name__} fields (unknown keys are errors)")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    if value == {}:
        return "none"
    return str(value)


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp

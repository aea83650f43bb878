"""Option groups shared by several subcommands: data, config overrides, timing and contention."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from squeezenas.utils.config import ConfigError

# --- data and config overrides (search, train, eval) --------------------------------------------------------


def data_args(p: argparse.ArgumentParser, dataset_help: str, root_help: str = "the dataset's folder") -> None:
    p.add_argument("--dataset", help=dataset_help)
    p.add_argument("--data-root", help=root_help)
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE", dest="data_option",
                   help="extra dataset argument, YAML value (e.g. num_samples=64, size=[64,128]); repeatable")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["size=[64,128]", "num_samples=8"]`` → ``{"size": [64, 128], "num_samples": 8}``."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--data-option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options


def overrides_from(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config fields given on the command line (parsers with ``argument_default=SUPPRESS``, whose dests are
    the field names); ``--data-option`` items become ``data_options``."""
    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("command", "config", *skip)}
    if "data_option" in given:
        given["data_options"] = parse_options(given.pop("data_option"))
    return given

"""``squeezenas`` entry point: dispatches to one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand → module under squeezenas.cli; each defines add_arguments(parser) and run(args) -> int | None
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "info": "info",
    "predict": "predict",
    "lut": "lut",
    "bench": "bench",
    "train": "train",
    "eval": "eval",
    "export": "export",
    "search": "search",
    "sample": "sample",
    "draw": "draw",
}


def build_parser() -> argparse.ArgumentParser:
    from squeezenas import __version__

    parser = argparse.ArgumentParser(prog="squeezenas", description="Hardware-aware NAS for semantic segmentation.")
    parser.add_argument("--version", action="version", version=f"squeezenas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"squeezenas.cli.{module}")
        p = sub.add_parser(name, help=mod.__doc__.strip().splitlines()[0], description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except (FileNotFoundError, ValueError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process fails alike: one says why
            print(f"squeezenas {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

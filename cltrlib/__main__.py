"""``python -m cltrlib <command>``: evaluate, generate, models, reproduce, and any subpackage's commands.

Each subpackage with a ``cli.py`` that defines ``register(subparsers)`` adds its own
commands (e.g. ``cltrlib.jhumaneval.cli``), so new stages need no edit here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import cltrlib
from cltrlib import cli

CORE_COMMANDS = {"evaluate", "generate", "models", "reproduce"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """All commands; for a core ``command`` the subpackages are not imported (they pull in
    torch/transformers, seconds of start-up that ``evaluate`` does not need)."""
    parser = argparse.ArgumentParser(prog="python -m cltrlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    if command in CORE_COMMANDS:
        return parser
    for mod in sorted(pkgutil.iter_modules(cltrlib.__path__), key=lambda m: m.name):
        if mod.ispkg:
            try:
                sub_cli = importlib.import_module(f"cltrlib.{mod.name}.cli")
            except ModuleNotFoundError as exc:
                if exc.name != f"cltrlib.{mod.name}.cli":
                    raise
                continue
            sub_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

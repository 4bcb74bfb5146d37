"""The ``cltr <stage> <verb>`` command line: every command parses, old spellings name the new ones, the core
commands start without torch, and the README lists exactly the commands there are."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest

from cltrlib import config
from cltrlib.__main__ import RENAMED, build_parser, main

COMMANDS = {  # argv -> the function it dispatches to
    ("codeeval", "evaluate", "s.jsonl", "--out", "r.jsonl"): "_cmd_evaluate",
    ("codegen", "generate", "--model", "gemma3-270m"): "_cmd_generate",
    ("jhumaneval", "build", "--backend", "memory"): "_cmd_build",
    ("jhumaneval", "validate", "jhumaneval"): "_cmd_validate",
    ("jhumaneval", "mt", "--model", "gemma3-270m"): "_cmd_mt",
    ("transfer", "run", "--profile", "smoke"): "_cmd_run",
    ("transfer", "adapters"): "_cmd_adapters",
    ("embeddings", "similarity", "--model", "gemma3-270m"): "_cmd_similarity",
    ("models", "prepare"): "_cmd_models",
    ("models", "list"): "_cmd_models",
    ("reproduce", "--profile", "smoke", "--only", "03"): "_cmd_reproduce",
}


def _verbs(parser) -> set[tuple[str, ...]]:
    """Every (stage, verb) / (command,) the parser accepts."""
    import argparse

    def subcommands(p):
        acts = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        return acts[0].choices if acts else {}

    found = set()
    for name, sub in subcommands(parser).items():
        verbs = subcommands(sub)
        found |= {(name, v) for v in verbs} if verbs else {(name,)}
    return found


@pytest.mark.parametrize("argv", list(COMMANDS), ids=[" ".join(a[:2]) for a in COMMANDS])
def test_every_command_parses_to_its_function(argv):
    args = build_parser(argv[0]).parse_args(list(argv))
    assert args.func.__name__ == COMMANDS[argv]


def test_the_command_list_is_complete():
    assert _verbs(build_parser()) == {a[:2] if a[0] != "reproduce" else a[:1] for a in COMMANDS}


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_an_old_spelling_exits_2_and_names_the_new_one(old, capsys):
    assert main([old, "x"]) == 2
    assert f"cltr {RENAMED[old]}" in capsys.readouterr().err


def test_core_and_jhumaneval_commands_start_without_torch():
    code = ("import sys\nfrom cltrlib.__main__ import build_parser\n"
            "build_parser('codeeval').parse_args(['codeeval', 'evaluate', 's', '--out', 'o'])\n"
            "build_parser('reproduce').parse_args(['reproduce'])\n"
            "build_parser('jhumaneval').parse_args(['jhumaneval', 'validate', 'p'])\n"
            "import cltrlib.codeeval, cltrlib.reproduce\n"  # what `codeeval evaluate` and `reproduce` then load
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))")
    env = dict(os.environ, PYTHONPATH=str(config.REPO_ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cltr_console_script_is_declared():
    meta = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["scripts"]["cltr"] == "cltrlib.__main__:main"


def test_python_dash_m_cltrlib_still_works():
    env = dict(os.environ, PYTHONPATH=str(config.REPO_ROOT))
    out = subprocess.run([sys.executable, "-m", "cltrlib", "models", "list"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=config.REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert "smollm2-135m-instruct" in out.stdout


def test_the_readme_lists_every_command():
    readme = (config.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    listed = set()
    for line in block.strip().splitlines():
        words = re.findall(r"[a-z][a-z0-9-]*|--\S+|\S+", line.removeprefix("cltr "))
        listed.add(tuple(words[:2]) if words[0] != "reproduce" else ("reproduce",))
    assert listed == _verbs(build_parser())

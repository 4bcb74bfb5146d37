"""Text corpora for continual pre-training, from sources we manage: the Debian manual pages and user folders.

Why manual pages: Debian's ``manpages-ja`` / ``manpages-ja-dev`` are Japanese translations of the Linux and C-library
manual pages — technical, programming-adjacent Japanese, DFSG-free, installable offline-from-the-registry with apt —
and ``manpages`` / ``manpages-dev`` are their English originals, so the Japanese condition and its English control
draw from the same domain. The repository's set-up (``.ci/system-deps.sh``) installs them where apt exists.

Pages are rendered with groff (``-man -Tutf8``, one paragraph per line, no overstrike) where it is installed, else
with a small roff stripper (``strip_roff``). A translated page keeps some paragraphs in English (the translation
lags upstream); ``manpage_documents("ja")`` drops paragraphs of English prose, so the Japanese-only
condition does not quietly train on English prose (code, synopses and headings stay: they are part of the domain).

Measured (Debian bookworm, manpages-ja 0.5.0.0.20221215): 1,753 Japanese pages with text, 5.96 M characters of which
2.96 M kana/kanji; their 1,267 English originals, 6.88 M characters. Rendering takes a minute or two on 2 cores, so the rendered corpus is cached under ``<cache>/corpora/`` keyed by
the installed package versions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from cltrlib import config

MAN_ROOTS = {"ja": Path("/usr/share/man/ja"), "en": Path("/usr/share/man")}
MAN_PACKAGES = {"ja": ("manpages-ja", "manpages-ja-dev"), "en": ("manpages", "manpages-dev")}
# Sections of programming and system documentation (1 commands, 2 system calls, 3 library, 4 devices, 5 formats,
# 7 overviews, 8 administration); 6 (games) is tiny and off-domain.
MAN_SECTIONS = ("1", "2", "3", "4", "5", "7", "8")
MIN_JAPANESE_SHARE = 0.25  # a paragraph counts as Japanese when this share of its letters is kana or kanji
RENDER_VERSION = "2"  # bump when rendering or filtering changes: part of the cache key

JA_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f"  # kana, kanji, half-width katakana
JA_CHAR = re.compile(f"[{JA_CHARS}]")
_LETTER = re.compile(r"[^\W\d_]")


class CorpusError(RuntimeError):
    """A corpus that cannot be read, with what to do about it."""


@dataclass(frozen=True)
class Document:
    """One training document: ``id`` is stable across runs (e.g. ``man/ja/man2/open.2``)."""

    id: str
    language: str
    text: str
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


def japanese_share(text: str) -> float:
    """Share of the letters in ``text`` that are kana or kanji (0 for text without letters)."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    return sum(1 for ch in letters if JA_CHAR.match(ch)) / len(letters)


_ROFF_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?\d+"), ""),  # size changes
    (re.compile(r"\\\((em|en)"), "—"),
    (re.compile(r"\\\(.."), ""),
    (re.compile(r"\\\*(\[[^\]]*\]|\(..|.)"), ""),  # strings
    (re.compile(r"\\[&|^%:]"), ""),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\ "), " "),
]
_MACRO = re.compile(r"^[.'](?P<name>[A-Za-z]{1,3})\b\s*(?P<args>.*)$")
_TEXT_MACROS = {"B", "I", "BI", "BR", "IB", "IR", "RB", "RI", "SM", "SB", "SH", "SS", "TP", "IP"}
_ALTERNATING_MACROS = {"BI", "BR", "IB", "IR", "RB", "RI"}
_BREAK_MACROS = {"PP", "P", "LP", "SH", "SS", "TP", "IP", "br", "sp", "RS", "RE", "nf", "fi", "EX", "EE"}


def strip_roff(source: str) -> str:
    """Plain text from man(7) roff without groff: comments and unknown requests dropped, font escapes removed,
    text macros' arguments kept, paragraphs separated by blank lines. Cruder than groff (no tables, no
    hyphenation), enough for training text."""
    out: list[str] = []
    for raw in source.splitlines():
        line = raw.rstrip()
        if line.startswith(('.\\"', "'\\\"", '\\"')) or line in {".", "'"}:
            continue
        match = _MACRO.match(line)
        if match:
            name, args = match["name"], match["args"]
            if name in _BREAK_MACROS:
                out.append("")
            if name in _TEXT_MACROS and args:
                words = [w.strip('"') for w in re.findall(r'"[^"]*"|\S+', args)]
                # .BI/.BR/.IR/... alternate fonts between arguments written together; .B/.I/.SH join them with spaces
                out.append(("" if name in _ALTERNATING_MACROS else " ").join(words))
            continue
        for pattern, repl in _ROFF_ESCAPES:
            line = pattern.sub(repl, line)
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def render_manpage(path: Path) -> str:
    """A manual page as plain UTF-8 text, one paragraph per line (groff if installed, else ``strip_roff``)."""
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    source = raw.decode("utf-8", errors="replace")
    if shutil.which("groff") is None:
        return strip_roff(source)
    # -k: preconv (UTF-8 input); -P -cbou: plain characters, no overstrike/underline; a very long line length and no
    # indent so a paragraph is one line and Japanese is never broken mid-sentence by the formatter.
    proc = subprocess.run(["groff", "-k", "-man", "-Tutf8", "-P", "-cbou", "-rLL=4000n", "-rIN=0n"],
                          input=raw, capture_output=True, timeout=60)
    text = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0 or not text.strip():
        return strip_roff(source)
    lines = text.splitlines()
    # Drop groff's running header and footer (the first and last non-blank lines: "OPEN(2) ... OPEN(2)").
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    if len(nonblank) >= 2:
        lines = lines[nonblank[0] + 1: nonblank[-1]]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in lines)).strip()


def paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs (blank-line separated; line breaks inside kept, so code keeps its lines)."""
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


_PROSE_WORDS = 8  # an untranslated English paragraph: this many words and sentence punctuation, no Japanese


def is_english_prose(paragraph: str) -> bool:
    """Untranslated English prose (dropped from the Japanese corpus); code, synopses and headings are not prose."""
    words = re.findall(r"[A-Za-z]{2,}", paragraph)
    return (japanese_share(paragraph) < MIN_JAPANESE_SHARE and len(words) >= _PROSE_WORDS
            and bool(re.search(r"[a-z][.!?](\s|$)", paragraph)))


def _keep_paragraph(paragraph: str, language: str) -> bool:
    if language == "ja":
        return not is_english_prose(paragraph)
    return japanese_share(paragraph) == 0.0


def _package_versions(language: str) -> dict[str, str]:
    versions = {}
    for pkg in MAN_PACKAGES[language]:
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True,
                                 timeout=30)
            versions[pkg] = out.stdout.strip() if out.returncode == 0 else "absent"
        except (OSError, subprocess.SubprocessError):
            versions[pkg] = "unknown"
    return versions


def manpage_files(language: str, root: Path | None = None, sections: Iterable[str] = MAN_SECTIONS) -> list[Path]:
    """The installed manual pages of ``language``, sorted: ``ja`` every translation; ``en`` the English originals
    *of the translated pages* (``/usr/share/man`` also holds every other package's pages, 20k in all; the English
    control should be the same documents in the other language, not a different domain)."""
    base = Path(root) if root is not None else MAN_ROOTS[language]
    files = sorted(f for s in sections for f in (base / f"man{s}").glob("*") if f.is_file() and not f.is_symlink())
    if language == "en" and root is None:
        translated = {f.relative_to(MAN_ROOTS["ja"]).as_posix()
                      for f in manpage_files("ja", sections=sections)}
        files = [f for f in files if f.relative_to(base).as_posix() in translated]
    return files


def manpage_documents(language: str, root: Path | None = None, sections: Iterable[str] = MAN_SECTIONS,
                      workers: int | None = None) -> list[Document]:
    """One ``Document`` per installed manual page of ``language``, paragraphs not in that language dropped (cached).

    Raises ``CorpusError`` naming the packages to install when there are none.
    """
    base = Path(root) if root is not None else MAN_ROOTS[language]
    files = manpage_files(language, root, sections)
    if not files:
        raise CorpusError(f"no manual pages under {base}: install {' '.join(MAN_PACKAGES[language])} "
                          f"(`sudo apt-get install {' '.join(MAN_PACKAGES[language])}`; `make env` does it as root), "
                          "or train on the data mirror's side / a folder of your own text instead")
    key = hashlib.sha256(json.dumps({"v": RENDER_VERSION, "lang": language, "pkgs": _package_versions(language),
                                     "files": [str(f) for f in files], "groff": bool(shutil.which("groff"))},
                                    sort_keys=True).encode()).hexdigest()[:16]
    cache = config.cache_dir() / "corpora" / f"man-{language}-{key}.jsonl.gz"
    if cache.exists():
        return list(read_documents(cache))

    def one(path: Path) -> Document | None:
        kept = [p for p in paragraphs(render_manpage(path)) if _keep_paragraph(p, language)]
        if not kept:
            return None
        rel = path.relative_to(base).as_posix().removesuffix(".gz")
        return Document(f"man/{language}/{rel}", language, "\n\n".join(kept), "manpages")

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        docs = [d for d in pool.map(one, files) if d is not None]
    write_documents(cache, docs)
    return docs


def write_documents(path: Path, docs: Iterable[Document]) -> None:
    """Write documents as gzipped JSONL atomically (a kill leaves no half-written cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_documents(path: Path) -> Iterator[Document]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield Document(**json.loads(line))


def folder_documents(folder: str | Path, language: str) -> list[Document]:
    """A user corpus: every ``*.txt`` file (one document each) and every ``*.jsonl`` line's ``text`` field under
    ``folder``. Errors name the file and line."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist")
    docs: list[Document] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".txt":
            docs.append(Document(f"folder/{rel}", language, path.read_text(encoding="utf-8"), str(folder)))
        elif path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise CorpusError(f"{path}:{n}: each line must be a JSON object with a 'text' field "
                                      f"({type(err).__name__})") from None
                docs.append(Document(f"folder/{rel}:{n}", language, text, str(folder)))
    if not docs:
        raise CorpusError(f"no .txt or .jsonl files under {folder}")
    return docs

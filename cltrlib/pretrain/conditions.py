"""The continual pre-training conditions (Swallow's recipe, plus the control Paper A lacked) and their corpora.

- ``ja``           Japanese only
- ``en``           English only, the same token count: the control (does *any* further training move L'p, or
                   Japanese specifically?)
- ``ja+en``        Japanese with 10% English replay (Swallow's guard against forgetting)
- ``ja+parallel``  Japanese with 10% English–Japanese sentence pairs
- ``ja+vocab``     Japanese only, after vocabulary expansion (``cltrlib.pretrain.vocab``)

Every corpus is the training split (``packing.split_documents``) with every paragraph that shares an n-gram with
evaluation data removed (``contamination.decontaminate``), so no condition trains on what the study tests on.
Sources: ``manpages`` (Debian's Japanese manual pages and the English originals of the same pages), ``mirror``
(the fallback where the pages are not installed: SIB-200's training sentences, a much smaller corpus), or a folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from cltrlib.pretrain.corpus import Document, folder_documents, manpage_documents
from cltrlib.pretrain.packing import Part, split_documents

REPLAY_SHARE = 0.1
PAIRS_PER_DOCUMENT = 8


@dataclass(frozen=True)
class Condition:
    name: str
    parts: tuple[tuple[str, float], ...]  # (source name, share of the tokens)
    expand_vocab: bool = False
    purpose: str = ""


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition("ja", (("ja", 1.0),), purpose="Japanese only"),
    Condition("en", (("en", 1.0),), purpose="English only, same tokens: the control"),
    Condition("ja+en", (("ja", 1 - REPLAY_SHARE), ("en", REPLAY_SHARE)), purpose="Japanese + 10% English replay"),
    Condition("ja+parallel", (("ja", 1 - REPLAY_SHARE), ("parallel", REPLAY_SHARE)),
              purpose="Japanese + 10% en-ja sentence pairs"),
    Condition("ja+vocab", (("ja", 1.0),), expand_vocab=True, purpose="Japanese only, after vocabulary expansion"),
)}


def condition(name: str) -> Condition:
    if name not in CONDITIONS:
        raise ValueError(f"unknown pre-training condition {name!r}; choose one of {', '.join(CONDITIONS)}")
    return CONDITIONS[name]


def _grouped(ids: list, texts: list[str], prefix: str, language: str, per_document: int) -> list[Document]:
    """Consecutive texts grouped ``per_document`` to a document, named by its first row's id."""
    return [Document(f"{prefix}/{ids[i]}", language, "\n\n".join(texts[i:i + per_document]), "sib200")
            for i in range(0, len(texts), per_document)]


def parallel_documents() -> list[Document]:
    """SIB-200's training sentences as English–Japanese pairs (FLORES-200 translations; no notebook tests on this
    split), ``PAIRS_PER_DOCUMENT`` pairs per document."""
    from cltrlib.data.multilingual import load_sib200

    en, ja = load_sib200("en", "train"), load_sib200("ja", "train")
    both = en.merge(ja, on="index_id", suffixes=("_en", "_ja")).sort_values("index_id")
    pairs = [f"English: {a}\n日本語: {b}" for a, b in zip(both["text_en"], both["text_ja"], strict=True)]
    return _grouped(list(both["index_id"]), pairs, "sib200-train-pairs", "en-ja", PAIRS_PER_DOCUMENT)


def mirror_documents(language: str) -> list[Document]:
    """The fallback corpus: SIB-200's training sentences of one language, ``PAIRS_PER_DOCUMENT`` per document."""
    from cltrlib.data.multilingual import load_sib200

    df = load_sib200(language, "train").sort_values("index_id")
    return _grouped(list(df["index_id"]), list(df["text"]), f"sib200-train-{language}", language,
                    PAIRS_PER_DOCUMENT)


def source_documents(name: str, source: str = "manpages") -> list[Document]:
    """Documents of one source name (``ja``, ``en``, ``parallel``) from ``source`` (manpages, mirror, or a folder
    path, which then holds the ``ja`` text and the ``en`` text in sub-folders of those names)."""
    if name == "parallel":
        return parallel_documents()
    if source == "manpages":
        return manpage_documents(name)
    if source == "mirror":
        return mirror_documents(name)
    return folder_documents(f"{source}/{name}", name)


def training_parts(cond: Condition, source: str = "manpages") -> tuple[list[Part], dict]:
    """The condition's mixture parts from decontaminated training documents, and a report per part: documents,
    held-out documents, paragraphs dropped by the contamination filter."""
    from cltrlib.pretrain.contamination import decontaminate

    parts, report = [], {}
    for name, share in cond.parts:
        docs = source_documents(name, source)
        train, held = split_documents(docs)
        clean, dropped = decontaminate(train)
        parts.append(Part(name, tuple(clean), share))
        report[name] = {"documents": len(clean), "held_out_documents": len(held), "paragraphs_dropped": dropped}
    return parts, report


def held_out_documents(language: str, source: str = "manpages") -> list[Document]:
    """The held-out documents of a language (never trained on in any condition), for perplexity."""
    return split_documents(source_documents(language, source))[1]

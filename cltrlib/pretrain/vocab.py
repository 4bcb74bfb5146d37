"""Vocabulary expansion for an English-centric model: Japanese tokens learnt from the corpus, rows initialised well.

Why: SmolLM2's tokenizer spends about one token per Japanese character (often several byte tokens for a kanji), so
a Japanese text costs it 2-3x the tokens of its English translation, and every Japanese word must be assembled from
pieces the model rarely saw. Swallow (Review D) and Chinese-LLaMA / Colossal-LLaMA add target-language tokens before
continual pre-training. Here:

1. learn a BPE vocabulary on the Japanese corpus with the model's own tokenizer pipeline
   (``train_new_from_iterator``) and keep the most frequent new pieces that are mostly kana/kanji and not already
   single tokens;
2. add them to the tokenizer (old ids keep their meaning: new ids start at the old vocabulary's end);
3. give each new token's input-embedding and LM-head row the mean of the old rows of the subwords its text had
   under the old tokenizer (Colossal-LLaMA's initialisation), so the expanded model starts where the old one was
   instead of at random rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cltrlib.pretrain.corpus import JA_CHAR, Document, japanese_share


@dataclass(frozen=True)
class Expansion:
    """What an expansion added: the new tokens' texts (in id order) and how many ids the tokenizer had before."""

    new_tokens: tuple[str, ...]
    old_vocab_size: int


def learn_japanese_tokens(docs: Sequence[Document], tokenizer, n_new: int, vocab_size: int = 16_000,
                          min_chars: int = 2) -> list[str]:
    """Up to ``n_new`` Japanese pieces, most frequent first: learnt by BPE on ``docs``, at least ``min_chars``
    characters, wholly kana/kanji, and not already one token of ``tokenizer``: neither encoded as one id alone nor an
    entry of its vocabulary (a SentencePiece vocabulary holds pieces such as "この" that only occur inside a word, so
    they tokenise alone as two ids; adding them would not add an id but re-point an old one)."""
    texts = [d.text for d in docs]
    learnt = tokenizer.train_new_from_iterator(texts, vocab_size=vocab_size)
    counts: Counter[str] = Counter()
    for text in texts:
        for piece in learnt.tokenize(text):
            counts[learnt.convert_tokens_to_string([piece])] += 1
    known = tokenizer.get_vocab()
    out = []
    for piece, _ in counts.most_common():
        if len(piece) < min_chars or not all(JA_CHAR.match(ch) for ch in piece):
            continue
        if piece in known or len(tokenizer(piece, add_special_tokens=False).input_ids) <= 1:
            continue
        out.append(piece)
        if len(out) == n_new:
            break
    return out


def expand(model, tokenizer, new_tokens: Sequence[str]) -> Expansion:
    """Add ``new_tokens`` to ``tokenizer`` and rows for them to ``model`` (in place), each row the mean of the old
    rows of the token's old subwords, in the input embeddings and (if untied) the LM head."""
    import torch

    old_size = len(tokenizer)
    pieces = {t: tokenizer(t, add_special_tokens=False).input_ids for t in new_tokens}
    known = tokenizer.get_vocab()
    if already := [t for t in new_tokens if t in known]:
        raise ValueError(f"{len(already)} of the tokens are already in the vocabulary (e.g. {already[:3]}): adding "
                         "them would re-point old ids")
    added = tokenizer.add_tokens(list(new_tokens))
    if added != len(new_tokens) or len(tokenizer) != old_size + len(new_tokens):
        raise ValueError(f"only {added} of {len(new_tokens)} tokens were new to the tokenizer")
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is None or head.weight.data_ptr() == emb.data_ptr()
    with torch.no_grad():
        for token in new_tokens:
            new_id = tokenizer.convert_tokens_to_ids(token)
            if new_id < old_size:
                raise ValueError(f"token {token!r} got the old id {new_id}")
            old = torch.tensor(pieces[token])
            emb[new_id] = emb[old].mean(0)
            if not tied:
                head.weight[new_id] = head.weight[old].mean(0)
    return Expansion(tuple(new_tokens), old_size)


def tokens_per_japanese_char(tokenizer, docs: Sequence[Document]) -> float:
    """Tokens per kana/kanji character over the mostly-Japanese documents (the cost the expansion lowers)."""
    n_tok = n_chr = 0
    for d in docs:
        if japanese_share(d.text) < 0.25:
            continue
        n_tok += len(tokenizer(d.text, add_special_tokens=False).input_ids)
        n_chr += len(JA_CHAR.findall(d.text))
    if n_chr == 0:
        raise ValueError("no Japanese characters in these documents")
    return n_tok / n_chr

"""Input lengths sized from the data, per model and language, and the share each language loses to truncation.

Why: a fixed token cap is not language-neutral. SmolLM2's tokenizer spends about 3x as many tokens on a Japanese
PAWS-X sentence as on its English original (median 91 vs 27), so a 48-token cap keeps whole English sentences and
half of their Japanese translations (93% of them cut, often inside a UTF-8 character). Parallel-pair cosines and
classifier scores then compare unlike inputs, and the language ordering that results is an artefact.

So every stage that tokenizes text for a model sizes its length here: ``fit_max_length`` returns the longest
sequence of *any* language in the data (nothing is truncated, in no language), optionally bounded by a hard cap
(memory on a user's GPU); ``truncation_report`` is the table printed beside each result table, so a reader sees
what was cut. Cost stays low because callers batch texts by length (padding, not the cap, sets a batch's width).

Example::

    n = fit_max_length(tok, {"en": en_texts, "ja": ja_texts})          # no truncation anywhere
    truncation_report(tok, {"en": en_texts, "ja": ja_texts}, n)        # truncated_share 0.0 in every row
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def token_lengths(tokenizer, texts: Sequence[str], add_special_tokens: bool = True) -> np.ndarray:
    """Token count of each text as the model would see it untruncated (special tokens included by default)."""
    if not texts:
        return np.zeros(0, dtype=int)
    enc = tokenizer(list(texts), add_special_tokens=add_special_tokens, truncation=False)
    return np.array([len(ids) for ids in enc["input_ids"]], dtype=int)


def fit_max_length(tokenizer, texts_by_lang: Mapping[str, Sequence[str]], cap: int | None = None,
                   add_special_tokens: bool = True) -> int:
    """The longest sequence over every language's texts (so none is truncated), bounded by ``cap`` if given.

    A ``cap`` that binds truncates the languages the tokenizer spends most tokens on; ``truncation_report`` shows
    by how much."""
    longest = max((int(token_lengths(tokenizer, t, add_special_tokens).max(initial=1))
                   for t in texts_by_lang.values() if len(t)), default=1)
    return min(longest, cap) if cap else longest


def truncation_report(tokenizer, texts_by_lang: Mapping[str, Sequence[str]], max_length: int,
                      add_special_tokens: bool = True) -> pd.DataFrame:
    """Per language: n texts, median / 95th percentile / max tokens, the length used and the share truncated."""
    rows = []
    for lang, texts in texts_by_lang.items():
        lengths = token_lengths(tokenizer, texts, add_special_tokens)
        if lengths.size == 0:
            continue
        rows.append({"language": lang, "n": int(lengths.size), "median_tokens": float(np.median(lengths)),
                     "p95_tokens": float(np.percentile(lengths, 95)), "max_tokens": int(lengths.max()),
                     "max_length": int(max_length), "truncated_share": float((lengths > max_length).mean())})
    return pd.DataFrame(rows)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches of similar length (longest first): a batch pads to its own longest, not the data's."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]

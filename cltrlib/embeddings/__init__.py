"""Paper C: English-only instruction tuning, zero-shot cross-lingual accuracy, and
per-layer sentence-embedding similarity of parallel vs random en-X pairs.

Modules: ``pooling`` (mean / last-token, any padding side), ``pairs`` (aligned and
random pairs), ``extract`` (per-layer embeddings, cached), ``similarity`` (cosines,
exact Spearman), ``tasks`` + ``scoring`` + ``tuning`` + ``zeroshot`` (prompts, label-word
scoring, causal-LM LoRA, evaluation), ``pipeline`` (the stages), ``report`` (paper
layouts, figures, deviations from the paper). Settings: ``cltrlib.study.EmbeddingSettings``.
"""

from cltrlib.embeddings.pooling import POOLINGS, last_token_index, last_token_pool, mean_pool, pool_layers

__all__ = ["POOLINGS", "last_token_index", "last_token_pool", "mean_pool", "pool_layers"]

"""Paper C: English-only instruction tuning, zero-shot cross-lingual accuracy, and
per-layer sentence-embedding similarity of parallel vs random en-X pairs.

Modules: ``pooling`` (mean / last-token, any padding side), ``pairs`` (aligned and
random pairs), ``extract`` (per-layer embeddings, cached), ``similarity`` (cosines,
exact Spearman), ``tasks`` + ``scoring`` + ``tuning`` + ``zeroshot`` (prompts, label-word
scoring, causal-LM LoRA, evaluation), ``study`` (the stages), ``report`` (paper
layouts and figures), ``profiles`` (smoke / local / paper).
"""

from cltrlib.embeddings.pooling import POOLINGS, last_token_index, last_token_pool, mean_pool, pool_layers
from cltrlib.embeddings.profiles import DEVIATIONS, PROFILES, Profile, get_profile

__all__ = ["DEVIATIONS", "POOLINGS", "PROFILES", "Profile", "get_profile", "last_token_index", "last_token_pool",
           "mean_pool", "pool_layers"]

"""Code generation: prompt modes, batched decoding, stored and resumable runs (evaluation: ``cltrlib.codeeval``)."""

from cltrlib.codegen.engine import GenRequest, SamplingConfig, generate_batch, generate_many
from cltrlib.codegen.prompts import PROMPT_MODES, build_prompt_text, extract_code, to_sample_fields
from cltrlib.codegen.run import GenerationConfig, GenerationRun, run_generation

__all__ = [
    "PROMPT_MODES",
    "GenRequest",
    "GenerationConfig",
    "GenerationRun",
    "SamplingConfig",
    "build_prompt_text",
    "extract_code",
    "generate_batch",
    "generate_many",
    "run_generation",
    "to_sample_fields",
]

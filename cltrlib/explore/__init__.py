"""Interactive explorer for class use (``notebooks/00_explorer.ipynb``): ipywidgets panels on top of
the study's own code paths, each also renderable as static HTML for papermill runs."""

from cltrlib.explore.codeeval import PROFILES, CodeEvalPanel, load_pairs, profile_settings, search_problems
from cltrlib.explore.generation import GenerationCancelled, GenerationJob, start_generation
from cltrlib.explore.stored import problem_results
from cltrlib.explore.textdiff import diff_segments
from cltrlib.explore.verdict import Verdict, run_sample

__all__ = [
    "PROFILES",
    "CodeEvalPanel",
    "GenerationCancelled",
    "GenerationJob",
    "Verdict",
    "diff_segments",
    "load_pairs",
    "problem_results",
    "profile_settings",
    "run_sample",
    "search_problems",
    "start_generation",
]

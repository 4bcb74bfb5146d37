"""Interactive explorer for class use (``notebooks/00_explorer.ipynb``): ipywidgets panels on top of
the study's own code paths, each also renderable as static HTML for papermill runs."""

from cltrlib.explore.codeeval import CodeEvalPanel, load_pairs, search_problems
from cltrlib.explore.generation import GenerationCancelled, GenerationJob, start_generation
from cltrlib.explore.stored import problem_results
from cltrlib.explore.textdiff import diff_segments

__all__ = [
    "CodeEvalPanel",
    "GenerationCancelled",
    "GenerationJob",
    "diff_segments",
    "load_pairs",
    "problem_results",
    "search_problems",
    "start_generation",
]

"""Data loaders: one ``Problem`` type, one resolver for where data lives.

Resolution order for mirrored data sets: explicit path → ``CLTR_DATA_DIR`` →
the ``shared/data`` mirror beside the repo → the public hub (only where it is
reachable). Errors list every place that was tried and how to provide the data.
"""

from cltrlib.data.problems import (
    DataNotFoundError,
    Problem,
    load_humaneval,
    load_jhumaneval,
    load_problems,
    normalise_task_id,
    resolve_data_file,
)

__all__ = [
    "DataNotFoundError",
    "Problem",
    "load_humaneval",
    "load_jhumaneval",
    "load_problems",
    "normalise_task_id",
    "resolve_data_file",
]

"""The exception types of rtune_fashion.

Every message names the input, the problem and the fix. The CLI prints ``str(error)`` on one line and
exits with code 2 for any :class:`RtuneError`.
"""

from __future__ import annotations


class RtuneError(Exception):
    """Base class: a problem with the user's input or environment, not a bug in rtune_fashion."""


class DataError(RtuneError):
    """A dataset file is missing, truncated, corrupted or cannot be fetched."""


class ModelConfigError(RtuneError):
    """A model configuration cannot be built (unknown value, impossible CNN shapes, ...)."""


class SearchSpaceError(RtuneError):
    """A search space is invalid (bounds, empty choices, unknown keys, impossible shapes)."""


class SearcherError(RtuneError):
    """An unknown searcher or scheduler, or a pairing that cannot work."""


class ExperimentError(RtuneError):
    """Bad experiment settings (budgets, resources, storage) or an experiment that cannot run."""


class NonFiniteLossError(RtuneError):
    """Training diverged: the loss became NaN or infinite. The trial is ended with this error."""


class ExperimentInterrupted(RtuneError):
    """The search stopped before every trial ended (Ctrl+C). Finished work is kept on disk."""

    def __init__(self, experiment_dir: str, resume_command: str | None = None) -> None:
        self.experiment_dir = experiment_dir
        super().__init__(
            f"Interrupted. Finished trials and checkpoints are kept in {experiment_dir}. "
            f"Resume with: {resume_command or f'rtune resume {experiment_dir}'}"
        )

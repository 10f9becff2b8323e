"""Keep the console readable: TensorFlow's C++ start-up lines, printed once per process, are silenced.

TensorFlow 2.21 writes "oneDNN custom operations are on", "Could not find cuda drivers" and the CPU
feature notice straight to file descriptor 2 while it is imported, before ``TF_CPP_MIN_LOG_LEVEL`` is
read, so every Ray worker printed them through the driver. :func:`import_keras` imports Keras (and its
backend) with descriptor 2 pointed at a temporary file (the captured text is shown again if the import
fails), and sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless it is set, so later native log lines (such as
"failed call to cuInit" on a machine without a GPU) stay quiet too. ``RTUNE_SHOW_BACKEND_LOGS=1``
turns all of this off.

:func:`setup_worker` is the ``worker_process_setup_hook`` that experiments give Ray: the same quiet
import in each worker process before any trial code runs, and no line per checkpoint from Ray Train.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

SHOW_LOGS_VARIABLE = "RTUNE_SHOW_BACKEND_LOGS"


def import_keras() -> None:
    """Import Keras and its backend with the backend's native start-up output discarded.

    Raises:
        ImportError (or whatever the import raises): after printing the captured output to stderr.
    """
    if os.environ.get(SHOW_LOGS_VARIABLE) == "1" or "keras" in sys.modules:
        import keras  # noqa: F401 - the user asked to see the lines, or it is too late to hide them

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def setup_worker() -> None:
    """Ray's ``worker_process_setup_hook``: the backend import, done quietly once per worker process."""
    import_keras()
    if os.environ.get(SHOW_LOGS_VARIABLE) != "1":
        logging.getLogger("ray.train").setLevel(logging.WARNING)  # "Checkpoint successfully created" per epoch
        # "Restored on <ip> from checkpoint: ..." each time BOHB resumes a paused trial
        logging.getLogger("ray.tune.trainable.trainable").setLevel(logging.WARNING)
        # A reused actor builds a new model per trial, so TensorFlow traces a new train step each time and
        # warns about "excessive retracing" from the sixth trial on: expected here, not a user's problem.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def quiet_tune_driver() -> None:
    """No warning per trial that has not reported yet when Tune's results are read (a search interrupted or
    out of time before a trial's first epoch): that is a state rtune reports itself, not a fault."""
    if os.environ.get(SHOW_LOGS_VARIABLE) != "1":
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)

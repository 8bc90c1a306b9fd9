"""A model server process without Keras.

TensorFlow's ``__init__`` imports Keras eagerly (``keras.src.optimizers``, for the
optimizers' SavedModel registry), and Keras imports matplotlib: about a third of the CPU
time of ``import tensorflow`` (4 of 14 s of CPU on the 2-core drill machine), paid on every
(re)start of the model server. The model server only runs SavedModels, which are graphs and
variables: TF Serving runs them with no Python at all. Blocking the import before
TensorFlow loads shortens its restart, the slowest recovery of the fault drill.

Only the model server's own entry points call ``without_keras()``: a process that already
imported Keras (tests, the trainer) keeps it.
"""

from __future__ import annotations

import sys

BLOCKED = ("keras", "tf_keras")


def without_keras() -> bool:
    """Make ``import keras`` fail in this process (TensorFlow then skips it); returns True
    when it did, False when Keras was already imported."""
    if any(name in sys.modules for name in BLOCKED):
        return False
    for name in BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]  # Python's "do not import" mark
    return True

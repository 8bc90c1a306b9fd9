"""TensorFlow's thread pools, sized before the first model loads.

By default TensorFlow gives each process an intra-op pool and an inter-op pool of one
thread per core, and splits every op over them. For many small models that is mostly
overhead: the model server already runs concurrent requests (one per model batch, from
every predictor) in parallel threads, and splitting a 1- or 2-image call over more threads
mostly wakes pool threads that spin before they sleep. With one thread each (2 cores, the
pipeline bench's small CNN served to 8 concurrent clients), the model server's CPU per
1-image Predict went from 3.4 to 2.9 ms, per image of 32-image Predicts from 1.67 to
1.58 ms, and while idle from 2.3 to 1.5 ms/s; TensorFlow alone, in one thread, 3.3 -> 2.0 ms
per 1-image call. But a big request then runs on one core: InceptionV3 through the
pipeline bench went from 6.8 to 5.1 images/s. So TensorFlow's own sizes stay the default
(``HYDRA_TF_INTRA_OP_THREADS`` / ``HYDRA_TF_INTER_OP_THREADS`` = 0); a hall of small
models sets 1.

The pools can only be sized before TensorFlow's runtime starts (the first op or model
load); a process that already started it (tests, a notebook) keeps its pools, with a
warning.
"""

from __future__ import annotations

import tensorflow as tf

from hydra_common.logs import get_logger

log = get_logger(__name__)


def configure_threads(intra_op: int, inter_op: int) -> bool:
    """Size TensorFlow's intra- and inter-op pools (0: TensorFlow's default); True when the
    process runs with these sizes afterwards, False when its runtime had started already
    with others."""
    wanted = (intra_op, inter_op)
    current = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    if current == wanted:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as exc:  # the runtime is up: its pools cannot change any more
        log.warning(
            "TensorFlow started already; its thread pools keep their sizes",
            extra={
                "intra_op": current[0],
                "inter_op": current[1],
                "wanted_intra_op": intra_op,
                "wanted_inter_op": inter_op,
                "error": str(exc),
            },
        )
        return False
    return True

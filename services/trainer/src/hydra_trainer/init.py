"""Where a model's weights start: ``--init imagenet``, ``random`` or a weights file.

``imagenet`` loads Keras' ImageNet weights for the architecture's base from disk only:
``HYDRA_WEIGHTS_DIR`` first, then Keras' own cache (``$KERAS_HOME/models``, default
``~/.keras/models``). A cluster mounts the file or bakes it into the trainer image; Hydra
never downloads at training time, and never falls back to a random start silently: a
missing file is a clear error that says where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra_common.errors import InvalidInput
from hydra_common.training import DEFAULT_INIT
from hydra_trainer.architectures import Architecture


def default_init(arch: Architecture) -> str:
    """The architecture's usual start: ImageNet where Keras has weights, else random."""
    return DEFAULT_INIT.get(arch.name, "imagenet" if arch.imagenet_weights else "random")


def weight_dirs(weights_dir: str | Path | None) -> list[Path]:
    """Folders searched for ImageNet weights, in order."""
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    dirs = [Path(weights_dir)] if weights_dir else []
    return [*dirs, keras_home / "models"]


def resolve_init(
    init: str | None, arch: Architecture, weights_dir: str | Path | None = None
) -> str | None:
    """The weights file the model starts from, or None for a random start."""
    init = init or default_init(arch)
    if init == "random":
        return None
    if init == "imagenet":
        if arch.imagenet_weights is None:
            raise InvalidInput(
                f"architecture {arch.name!r} has no ImageNet weights; use --init random"
            )
        searched = weight_dirs(weights_dir)
        for folder in searched:
            candidate = folder / arch.imagenet_weights
            if candidate.is_file():
                return str(candidate)
        where = ", ".join(str(d) for d in searched)
        raise InvalidInput(
            f"ImageNet weights for {arch.name} not found: put {arch.imagenet_weights} "
            f"in HYDRA_WEIGHTS_DIR or Keras' cache (searched {where}), "
            "or train with --init random"
        )
    if arch.imagenet_weights is None:
        raise InvalidInput(f"architecture {arch.name!r} cannot start from a weights file")
    path = Path(init)
    if not path.is_file():
        raise InvalidInput(f"--init: no weights file {init!r} (or use imagenet / random)")
    return str(path)

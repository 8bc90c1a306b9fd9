"""What a training run may ask for: the one list the CLI, the API and the trainer check.

The API validates web requests against these names without importing TensorFlow; the
trainer's registry of builders (its ``architectures`` module) must offer exactly these
(a test checks). A ``module:function`` plug-in is accepted only from the command line of
someone who can run code anyway, never from a request.
"""

from __future__ import annotations

ARCHITECTURES = ("inceptionv3", "inceptionv3-cbam", "small")
SAMPLING_METHODS = ("normal", "undersample", "oversample")
# ``imagenet``: Keras' InceptionV3 weights from the local Keras cache or HYDRA_WEIGHTS_DIR;
# ``random``: a random start; anything else on the command line is a weights file path.
INITS = ("imagenet", "random")

# Hydra's own defaults, used when neither the request nor the plot type says otherwise.
DEFAULT_ARCHITECTURE = "inceptionv3"
DEFAULT_SAMPLING = "undersample"  # balanced: every rare-class image, a sub-sample of the rest
DEFAULT_INIT = {"inceptionv3": "imagenet", "inceptionv3-cbam": "imagenet", "small": "random"}


def resolve_defaults(
    architecture: str | None,
    sampling: str | None,
    plot_type_architecture: str | None = None,
    plot_type_sampling: str | None = None,
) -> tuple[str, str]:
    """The architecture and sampling a run uses: asked for, else the plot type's, else Hydra's."""
    return (
        architecture or plot_type_architecture or DEFAULT_ARCHITECTURE,
        sampling or plot_type_sampling or DEFAULT_SAMPLING,
    )

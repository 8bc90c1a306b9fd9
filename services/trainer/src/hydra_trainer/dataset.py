"""Training sets: which labelled images a model learns from, how they are split and sampled.

The label of an image is its current expert label (the ``labels`` table holds the latest
one per plot). Labels that are not trainable (Ignore) or no longer valid for the plot type
are never used, and a class with fewer than 2 examples is dropped (and reported).

The images are split per class first (so no image is both trained on and evaluated on),
then only the train split is sampled:

- ``normal``: every image once.
- ``undersample``: every class drawn N times, N = the number of Bad training images (the
  smallest class when there is no Bad class).
- ``oversample``: every class drawn N times, N = the largest class.

"Drawn N times" keeps as many distinct images as possible: a class with at least N images
gives N different ones; a smaller class gives all its images once and draws the rest with
replacement. ``copies`` records how often each image was drawn.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLING_METHODS = ("normal", "undersample", "oversample")
MIN_EXAMPLES = 2


@dataclass(frozen=True)
class LabelledImage:
    """A labelled image of the plot type: plot id, file and its human label."""

    plot_id: int
    path: str
    label: str


@dataclass(frozen=True)
class SplitSet:
    """Images per split; ``train`` carries the copies drawn by sampling."""

    train: list[tuple[LabelledImage, int]]
    validation: list[LabelledImage]
    test: list[LabelledImage]


def drop_rare_classes(
    items: Sequence[LabelledImage], min_count: int = MIN_EXAMPLES
) -> tuple[list[LabelledImage], dict[str, int]]:
    """Keep classes with at least ``min_count`` examples; return the rest's counts."""
    counts = Counter(i.label for i in items)
    dropped = {label: n for label, n in counts.items() if n < min_count}
    return [i for i in items if i.label not in dropped], dropped


def split_images(
    items: Sequence[LabelledImage], train_fraction: float, rng: np.random.Generator
) -> tuple[list[LabelledImage], list[LabelledImage], list[LabelledImage]]:
    """Split per class into (train, validation, test).

    Each class keeps ``train_fraction`` for training but holds out at least one image, and
    at least two when it has three or more, so every class can be evaluated; the held-out
    images alternate between validation (early stopping) and test.
    """
    by_class: dict[str, list[LabelledImage]] = defaultdict(list)
    for item in items:
        by_class[item.label].append(item)
    train: list[LabelledImage] = []
    validation: list[LabelledImage] = []
    test: list[LabelledImage] = []
    for label in sorted(by_class):
        group = by_class[label]
        order = rng.permutation(len(group))
        n = len(group)
        held = max(math.ceil(round(n * (1.0 - train_fraction), 6)), 2 if n >= 3 else 1)
        held = min(held, n - 1)
        for rank, idx in enumerate(order):
            item = group[int(idx)]
            if rank >= held:
                train.append(item)
            elif rank % 2 == 0 and held > 1:
                validation.append(item)
            else:
                test.append(item)
    return train, validation, test


def sample_counts(
    items: Sequence[LabelledImage], method: str, rng: np.random.Generator, bad_label: str = "Bad"
) -> list[tuple[LabelledImage, int]]:
    """Apply a sampling method; returns each used image with how many copies were drawn."""
    if method not in SAMPLING_METHODS:
        raise ValueError(f"unknown sampling {method!r} (known: {', '.join(SAMPLING_METHODS)})")
    if method == "normal":
        return [(i, 1) for i in items]
    by_class: dict[str, list[LabelledImage]] = defaultdict(list)
    for item in items:
        by_class[item.label].append(item)
    sizes = {label: len(group) for label, group in by_class.items()}
    if method == "oversample":
        target = max(sizes.values())
    else:
        target = sizes.get(bad_label) or min(sizes.values())
    out: list[tuple[LabelledImage, int]] = []
    for label in sorted(by_class):
        group = by_class[label]
        copies = np.zeros(len(group), dtype=int)
        if len(group) >= target:
            copies[rng.choice(len(group), target, replace=False)] = 1
        else:
            copies += 1
            np.add.at(copies, rng.choice(len(group), target - len(group), replace=True), 1)
        out.extend((group[i], int(c)) for i, c in enumerate(copies) if c > 0)
    return out


def build_split_set(
    items: Sequence[LabelledImage], method: str, train_fraction: float, seed: int
) -> SplitSet:
    """Split, then sample the train part (validation and test stay as they are)."""
    rng = np.random.default_rng(seed)
    train, validation, test = split_images(items, train_fraction, rng)
    return SplitSet(sample_counts(train, method, rng), validation, test)


def expand(train: Sequence[tuple[LabelledImage, int]]) -> list[LabelledImage]:
    """The train list with each image repeated by its copies."""
    return [item for item, copies in train for _ in range(copies)]

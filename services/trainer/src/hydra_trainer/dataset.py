"""Training sets: which labelled images a model learns from, how they are split and sampled.

The label of an image is its current expert label (the ``labels`` table holds the latest
one per plot). Labels that are not trainable (Ignore) or no longer valid for the plot type
are never used, and a class with fewer than 2 examples is dropped (and reported).

The images are split per class first (so no image is both trained on and evaluated on),
then only the train split is sampled. Three splits, each image in exactly one:

- ``test``: the figures every page and report shows; neither the model nor its thresholds
  ever saw these images. At least ``test_fraction`` (15 %) of each class and at least
  ``min_test`` (20) images per class where the data allows.
- ``validation``: early stopping and threshold selection. At least ``validation_fraction``
  (10 %) and at least ``min_validation`` (30) per class where the data allows.
- ``train``: the rest. "Where the data allows": test and validation each take at most a
  quarter of a class, so training keeps at least half (and at least one image); a class
  that cannot give ``min_test`` test images makes the figures *indicative*.

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
from dataclasses import dataclass, field

import numpy as np

from hydra_common.training import SAMPLING_METHODS

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
    rule: SplitRule = field(default_factory=lambda: SplitRule())

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and label (train counts the sampled copies)."""
        train: Counter[str] = Counter()
        for item, copies in self.train:
            train[item.label] += copies
        return {
            "train": dict(train),
            "validation": dict(Counter(i.label for i in self.validation)),
            "test": dict(Counter(i.label for i in self.test)),
        }

    def indicative(self) -> list[str]:
        """Labels with fewer test images than the rule's minimum: their figures are indicative."""
        test = Counter(i.label for i in self.test)
        labels = {i.label for i, _ in self.train} | set(test)
        return sorted(lb for lb in labels if test[lb] < self.rule.min_test)


def drop_rare_classes(
    items: Sequence[LabelledImage], min_count: int = MIN_EXAMPLES
) -> tuple[list[LabelledImage], dict[str, int]]:
    """Keep classes with at least ``min_count`` examples; return the rest's counts."""
    counts = Counter(i.label for i in items)
    dropped = {label: n for label, n in counts.items() if n < min_count}
    return [i for i in items if i.label not in dropped], dropped


@dataclass(frozen=True)
class SplitRule:
    """How many images of a class go to test and validation (see the module's docstring)."""

    test_fraction: float = 0.15
    validation_fraction: float = 0.10
    min_test: int = 20
    min_validation: int = 30
    most_held: float = 0.25  # of a class, for test and for validation each

    def __post_init__(self) -> None:
        if not (0 <= self.test_fraction < 1 and 0 <= self.validation_fraction < 1):
            raise ValueError("test and validation fractions must be within 0..1")
        if self.test_fraction + self.validation_fraction >= 1:
            raise ValueError("test and validation fractions leave nothing to train on")

    @classmethod
    def from_train_fraction(cls, train_fraction: float) -> SplitRule:
        """The old single knob: the held-out rest split evenly, with no minimum counts."""
        rest = max(0.0, 1.0 - train_fraction) / 2
        return cls(rest, rest, 0, 0, most_held=max(rest, 0.25))

    def counts(self, n: int) -> tuple[int, int]:
        """(test, validation) images for a class of ``n``."""
        if n < 2:
            return 0, 0
        cap = max(math.floor(n * self.most_held), 1)
        test = min(max(math.ceil(round(n * self.test_fraction, 6)), self.min_test), cap)
        left = n - test - math.ceil(n / 2)  # training keeps at least half
        cap_val = min(cap, max(left, 0))
        val = min(
            max(math.ceil(round(n * self.validation_fraction, 6)), self.min_validation), cap_val
        )
        return test, val


def split_images(
    items: Sequence[LabelledImage], rule: SplitRule | float, rng: np.random.Generator
) -> tuple[list[LabelledImage], list[LabelledImage], list[LabelledImage]]:
    """Split per class into (train, validation, test) by ``rule`` (or a train fraction)."""
    if not isinstance(rule, SplitRule):
        rule = SplitRule.from_train_fraction(rule)
    by_class: dict[str, list[LabelledImage]] = defaultdict(list)
    for item in items:
        by_class[item.label].append(item)
    train: list[LabelledImage] = []
    validation: list[LabelledImage] = []
    test: list[LabelledImage] = []
    for label in sorted(by_class):
        group = by_class[label]
        n_test, n_val = rule.counts(len(group))
        for rank, idx in enumerate(rng.permutation(len(group))):
            item = group[int(idx)]
            if rank < n_test:
                test.append(item)
            elif rank < n_test + n_val:
                validation.append(item)
            else:
                train.append(item)
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
    items: Sequence[LabelledImage], method: str, rule: SplitRule | float, seed: int
) -> SplitSet:
    """Split, then sample the train part (validation and test stay as they are)."""
    if not isinstance(rule, SplitRule):
        rule = SplitRule.from_train_fraction(rule)
    rng = np.random.default_rng(seed)
    train, validation, test = split_images(items, rule, rng)
    return SplitSet(sample_counts(train, method, rng), validation, test, rule)


def expand(train: Sequence[tuple[LabelledImage, int]]) -> list[LabelledImage]:
    """The train list with each image repeated by its copies."""
    return [item for item, copies in train for _ in range(copies)]

"""Training-set rules: class dropping, splitting, and the three sampling methods."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hydra_trainer.dataset import (
    LabelledImage,
    SplitRule,
    build_split_set,
    drop_rare_classes,
    expand,
    sample_counts,
    split_images,
)


def _items(counts: dict[str, int]) -> list[LabelledImage]:
    out, pid = [], 0
    for label, n in counts.items():
        for _ in range(n):
            pid += 1
            out.append(LabelledImage(pid, f"/img/{pid}.png", label))
    return out


def test_classes_with_fewer_than_two_examples_are_dropped() -> None:
    kept, dropped = drop_rare_classes(_items({"Good": 5, "Bad": 2, "NoData": 1}))
    assert dropped == {"NoData": 1}
    assert Counter(i.label for i in kept) == {"Good": 5, "Bad": 2}


def test_normal_sampling_uses_every_image_once() -> None:
    items = _items({"Good": 7, "Bad": 3})
    drawn = sample_counts(items, "normal", np.random.default_rng(0))
    assert [i for i, _ in drawn] == items and all(c == 1 for _, c in drawn)


def test_undersample_draws_every_class_as_often_as_bad() -> None:
    items = _items({"Good": 20, "Bad": 4, "NoData": 2})
    drawn = sample_counts(items, "undersample", np.random.default_rng(0))
    per_class: Counter[str] = Counter()
    for item, copies in drawn:
        per_class[item.label] += copies
    assert per_class == {"Good": 4, "Bad": 4, "NoData": 4}
    # The large class gives distinct images; the small one all of its images.
    assert sum(1 for i, _ in drawn if i.label == "Good") == 4
    assert {i.plot_id for i, _ in drawn if i.label == "NoData"} == {25, 26}


def test_undersample_without_bad_uses_smallest_class() -> None:
    drawn = sample_counts(_items({"Good": 9, "NoData": 3}), "undersample", np.random.default_rng(1))
    assert len(expand(drawn)) == 6


def test_oversample_draws_every_class_as_often_as_the_largest() -> None:
    items = _items({"Good": 10, "Bad": 3})
    drawn = sample_counts(items, "oversample", np.random.default_rng(0))
    per_class: Counter[str] = Counter()
    for item, copies in drawn:
        per_class[item.label] += copies
    assert per_class == {"Good": 10, "Bad": 10}
    assert {i.plot_id for i, _ in drawn if i.label == "Bad"} == {11, 12, 13}


def test_unknown_sampling_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sampling"):
        sample_counts(_items({"Good": 2}), "smote", np.random.default_rng(0))


def test_split_holds_out_every_class_and_never_overlaps() -> None:
    items = _items({"Good": 40, "Bad": 6, "NoData": 2})
    train, val, test = split_images(items, 0.95, np.random.default_rng(0))
    assert len(train) + len(val) + len(test) == len(items)
    ids = [i.plot_id for i in train + val + test]
    assert len(set(ids)) == len(ids)
    held = Counter(i.label for i in val + test)
    assert held["Good"] == 2 and held["Bad"] == 2 and held["NoData"] == 1
    assert Counter(i.label for i in train)["NoData"] == 1


def test_sampling_applies_to_the_train_split_only() -> None:
    items = _items({"Good": 30, "Bad": 6})
    split = build_split_set(items, "oversample", 0.8, seed=3)
    train_ids = {i.plot_id for i, _ in split.train}
    held_ids = {i.plot_id for i in split.validation + split.test}
    assert not train_ids & held_ids
    per_class: Counter[str] = Counter()
    for item, copies in split.train:
        per_class[item.label] += copies
    assert per_class["Good"] == per_class["Bad"] == 24


# --- the split rule: test and validation large enough to mean something ------------------


@pytest.mark.parametrize(
    ("n", "test", "validation"),
    [
        (2, 1, 0),  # one to train, one to test: figures indicative
        (10, 2, 2),  # capped: each held-out split takes at most a quarter
        (40, 10, 10),
        (100, 20, 25),  # at least 20 test images; 25 validation (capped below 30)
        (200, 30, 30),  # 15 % test; at least 30 validation
        (1000, 150, 100),  # 15 % test, 10 % validation
    ],
)
def test_split_rule_counts(n: int, test: int, validation: int) -> None:
    assert SplitRule().counts(n) == (test, validation)
    assert n - test - validation >= n / 2  # training keeps at least half


def test_split_set_records_counts_and_says_when_figures_are_indicative() -> None:
    items = _items({"Good": 300, "Bad": 50, "NoData": 3})
    split = build_split_set(items, "normal", SplitRule(), seed=0)
    counts = split.counts()
    assert counts["test"] == {"Good": 45, "Bad": 12, "NoData": 1}
    assert counts["validation"] == {"Good": 30, "Bad": 12}
    assert sum(counts["train"].values()) + 45 + 12 + 1 + 30 + 12 == len(items)
    assert split.indicative() == ["Bad", "NoData"]  # fewer than 20 test images
    every = [i.plot_id for i, _ in split.train] + [i.plot_id for i in split.validation + split.test]
    assert len(every) == len(set(every)) == len(items)

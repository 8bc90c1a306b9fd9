"""How unsure a model is of an image, and the order in which to label the unsure ones.

Uncertainty is the *margin*: the top output weight minus the runner-up's. 0 means the model
is torn between two labels, 1 that it is certain. Margin (rather than entropy) because it
reads the two labels the expert has to choose between, and a threshold on it ("keep images
whose margin is below 0.2") is easy to say.

The suggested labelling order sorts by margin, most uncertain first, with a diversity term:
images of one run come in tiers of ``per_run``. The first tier holds the ``per_run`` most
uncertain images of every run, ordered by margin; then the next ``per_run`` of every run,
and so on. So a run whose chunks all look alike (one detector problem, forty chunks) gives
the page a few examples, not forty near-duplicates. Images without weights come last.
The API's Labeler order, the keeper's keeping rule and bench/active_learning.py all use
these functions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_PER_RUN = 3


def margin(weights: Mapping[str, object] | Iterable[float] | None) -> float | None:
    """Top weight minus the second; the weight itself for a single output; None for none.

    Values that are not finite numbers are ignored (weights come from stored JSON).
    """
    if weights is None:
        return None
    values = weights.values() if isinstance(weights, Mapping) else weights
    top, second = -math.inf, -math.inf
    n = 0
    for raw in values:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            continue
        w = float(raw)
        if not math.isfinite(w):
            continue
        n += 1
        if w > top:
            top, second = w, top
        elif w > second:
            second = w
    if n == 0:
        return None
    if n == 1:
        return top
    return top - second


@dataclass(frozen=True, slots=True)
class Candidate:
    """An image that could be labelled: its id, run and the model's margin on it."""

    key: int
    run_number: int
    margin: float | None


def suggested_order(
    candidates: Iterable[Candidate], per_run: int = DEFAULT_PER_RUN
) -> list[Candidate]:
    """Most uncertain first, ``per_run`` per run per tier (see the module docstring).

    Ties go to the higher key (the newer image); the order is a pure function of the
    candidates, so pages of it do not overlap.
    """
    if per_run < 1:
        raise ValueError("per_run must be at least 1")
    by_run: dict[int, list[Candidate]] = defaultdict(list)
    unknown: list[Candidate] = []
    for c in candidates:
        (unknown if c.margin is None else by_run[c.run_number]).append(c)
    ranked: list[tuple[int, float, int, Candidate]] = []
    for items in by_run.values():
        items.sort(key=lambda c: (c.margin, -c.key))
        for i, c in enumerate(items):
            ranked.append((i // per_run, c.margin or 0.0, -c.key, c))
    ranked.sort(key=lambda r: r[:3])
    unknown.sort(key=lambda c: -c.key)
    return [r[3] for r in ranked] + unknown

"""The share of a Grad-CAM heat map's mass inside masks (``hydra_keeper.masks.mass_inside``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from hydra_common.errors import InvalidInput
from hydra_common.masks import MaskSpec, Rect, in_force, validate
from hydra_keeper.masks import mass_inside

LEFT = Rect(0.0, 0.0, 0.5, 1.0)


def test_mass_all_inside_and_all_outside() -> None:
    # 2 x 2 map, heat only in the left column.
    values = [1.0, 0.0, 1.0, 0.0]
    assert mass_inside(2, 2, values, [LEFT]) == pytest.approx(1.0)
    assert mass_inside(2, 2, values, [Rect(0.5, 0.0, 1.0, 1.0)]) == pytest.approx(0.0)


def test_mass_partial_cells_count_by_area() -> None:
    # Uniform heat: the share is the masked area, even where a rectangle cuts a cell.
    values = [1.0] * 9
    assert mass_inside(3, 3, values, [Rect(0.0, 0.0, 0.5, 1.0)]) == pytest.approx(0.5)
    assert mass_inside(3, 3, values, [Rect(0.1, 0.2, 0.4, 0.7)]) == pytest.approx(0.15)


def test_overlapping_rectangles_count_once() -> None:
    values = [1.0] * 16
    both = [Rect(0.0, 0.0, 0.5, 0.5), Rect(0.25, 0.25, 0.75, 0.75)]
    # Union area: 0.25 + 0.25 - 0.0625.
    assert mass_inside(4, 4, values, both) == pytest.approx(0.4375)
    assert mass_inside(4, 4, values, [LEFT, LEFT]) == pytest.approx(0.5)


def test_weighted_cells() -> None:
    # Row-major 1 x 4: masses 1, 2, 3, 4; the mask covers the 2nd cell and half the 3rd.
    share = mass_inside(1, 4, [1.0, 2.0, 3.0, 4.0], [Rect(0.25, 0.0, 0.625, 1.0)])
    assert share == pytest.approx((2.0 + 1.5) / 10.0)


def test_no_mass_or_bad_maps_give_zero() -> None:
    assert mass_inside(2, 2, [0.0] * 4, [LEFT]) == 0.0
    assert mass_inside(2, 2, [1.0] * 3, [LEFT]) == 0.0  # inconsistent dimensions
    assert mass_inside(0, 0, [], [LEFT]) == 0.0
    assert mass_inside(2, 2, [1.0] * 4, []) == 0.0
    # NaN and negative values weigh nothing.
    assert mass_inside(1, 2, [math.nan, 1.0], [Rect(0.5, 0.0, 1.0, 1.0)]) == pytest.approx(1.0)
    assert mass_inside(1, 2, [-5.0, 1.0], [Rect(0.5, 0.0, 1.0, 1.0)]) == pytest.approx(1.0)


def test_in_force_until_run_and_until_time() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert in_force(200, None, 200, now)
    assert not in_force(200, None, 201, now)
    assert in_force(None, now + timedelta(seconds=1), 10**6, now)
    assert not in_force(None, now, 1, now)
    # Both: expires at whichever comes first.
    assert not in_force(200, now - timedelta(days=1), 100, now)
    assert not in_force(50, now + timedelta(days=1), 100, now)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (MaskSpec(Rect(-0.1, 0, 0.5, 0.5), "dead", 10), "outside 0..1"),
        (MaskSpec(Rect(0, 0, 1.2, 0.5), "dead", 10), "outside 0..1"),
        (MaskSpec(Rect(0, 0, math.nan, 0.5), "dead", 10), "outside 0..1"),
        (MaskSpec(Rect(0.5, 0, 0.5, 0.5), "dead", 10), "non-empty"),
        (MaskSpec(Rect(0.1, 0.6, 0.5, 0.5), "dead", 10), "non-empty"),
        (MaskSpec(Rect(0, 0, 0.5, 0.5), "  ", 10), "reason"),
        (MaskSpec(Rect(0, 0, 0.5, 0.5), "dead"), "expiry"),
        (MaskSpec(Rect(0, 0, 0.5, 0.5), "dead", -1), "run number"),
    ],
)
def test_validate_refuses(spec: MaskSpec, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate(spec)

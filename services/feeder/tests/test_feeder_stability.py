"""When a file counts as complete: it held still long enough, by our clock or by its mtime."""

from __future__ import annotations

from hydra_feeder.scanner import CLOCK_SKEW_SECONDS, FileStat, StabilityTracker

WALL = 1_800_000_000.0  # "now" on the wall clock, seconds


def stat(size: int, age_s: float) -> FileStat:
    return FileStat(size=size, mtime_ns=int((WALL - age_s) * 1e9))


def test_a_file_being_written_waits_until_it_holds_still() -> None:
    tracker = StabilityTracker(1.0)
    tracker.observe("a.png", stat(100, 0.0), now=10.0, wall=WALL)
    assert tracker.take_ready(10.5) == []
    tracker.observe("a.png", stat(200, 0.0), now=10.6, wall=WALL + 0.6)  # it grew
    assert tracker.take_ready(11.5) == []
    assert [r for r, _ in tracker.take_ready(11.6)] == ["a.png"]


def test_the_scan_loop_is_told_when_the_next_file_is_due() -> None:
    # The scan loop sleeps until then instead of looking every quarter of the window.
    tracker = StabilityTracker(1.0)
    assert tracker.next_ready() is None
    tracker.observe("a.png", stat(100, 0.0), now=10.0, wall=WALL)
    tracker.observe("b.png", stat(100, 0.0), now=10.4, wall=WALL + 0.4)
    assert tracker.next_ready() == 11.0
    tracker.observe("a.png", stat(200, 0.0), now=10.6, wall=WALL + 0.6)  # it grew
    assert tracker.next_ready() == 11.4
    assert [r for r, _ in tracker.take_ready(11.4)] == ["b.png"]
    assert tracker.next_ready() == 11.6


def test_a_file_untouched_for_long_is_ready_at_once() -> None:
    tracker = StabilityTracker(1.0)
    tracker.observe("old.png", stat(100, 1.0 + CLOCK_SKEW_SECONDS + 5), now=10.0, wall=WALL)
    # Within the clock-skew margin: the file server's clock may be behind ours, so wait.
    tracker.observe("recent.png", stat(100, 1.0 + CLOCK_SKEW_SECONDS / 2), now=10.0, wall=WALL)
    assert [r for r, _ in tracker.take_ready(10.0)] == ["old.png"]
    assert [r for r, _ in tracker.take_ready(11.0)] == ["recent.png"]


def test_an_old_file_that_changes_again_waits_again() -> None:
    tracker = StabilityTracker(1.0)
    tracker.observe("a.png", stat(100, 60), now=10.0, wall=WALL)
    tracker.observe("a.png", stat(150, 0.0), now=10.2, wall=WALL + 0.2)  # appended to
    assert tracker.take_ready(10.5) == []
    assert [r for r, _ in tracker.take_ready(11.2)] == ["a.png"]

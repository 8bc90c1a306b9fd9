"""Transitions against the plot types' current states (``hydra_keeper.transitions``): pure
rules, tested without a database (the entries are judged as the keeper judges them)."""

from __future__ import annotations

from hydra_common.ids import uuid7
from hydra_keeper.transitions import State, mark_transitions

from .conftest import World, make_entry, make_report

WORLD = World("", "pt_transitions", 1, 7)
OTHER = World("", "pt_other", 2, 8)


def test_a_plot_types_first_report_and_a_changed_verdict_are_transitions() -> None:
    good = make_entry(WORLD, make_report(WORLD, (0.9, 0.1), run_number=5, chunk=1))
    bad = make_entry(WORLD, make_report(WORLD, (0.1, 0.9), run_number=5, chunk=2))
    still_bad = make_entry(WORLD, make_report(WORLD, (0.1, 0.9), run_number=5, chunk=3))
    states: dict[int, State] = {}
    stale = mark_transitions([good, bad, still_bad], states)
    assert [e.transition_kind for e in (good, bad, still_bad)] == ["first", "verdict", ""]
    # Only the newest entry of the plot type becomes its current state (and live files).
    assert [e.newest for e in (good, bad, still_bad)] == [False, False, True]
    assert states[WORLD.plot_type_id].order_id == still_bad.order_id
    assert stale == []  # nothing was stored before this batch


def test_confirmation_changes_and_skipped_chunks_are_marked_against_the_stored_state() -> None:
    stored = State(uuid7(), "Good", True, 5, 1, "live/pt/old.png", "live/pt/old.heatmap.png")
    unsure = make_entry(WORLD, make_report(WORLD, (0.65, 0.35), run_number=5, chunk=4))
    other = make_entry(OTHER, make_report(OTHER, (0.9, 0.1), run_number=9, chunk=0))
    other_state = State(uuid7(), "Good", True, 8, 7, "plots/pt_other/kept.png")
    states = {WORLD.plot_type_id: stored, OTHER.plot_type_id: other_state}
    stale = mark_transitions([unsure, other], states)
    assert unsure.transition_kind == "confirmation+chunk_skip"  # 0.65 < 0.7; chunk 2, 3 missing
    assert other.transition_kind == ""  # a new run starts at any chunk
    # The replaced state's live files go; a path outside live/ is never deleted.
    assert stale == ["live/pt/old.png", "live/pt/old.heatmap.png"]


def test_a_late_arrival_is_neither_a_transition_nor_the_current_state() -> None:
    late = make_entry(WORLD, make_report(WORLD, (0.1, 0.9), run_number=5, chunk=1))
    stored = State(uuid7(), "Good", True, 5, 2, "live/pt/current.png")  # newer than the report
    states = {WORLD.plot_type_id: stored}
    assert mark_transitions([late], states) == []
    assert (late.transition_kind, late.newest) == ("", False)
    assert states[WORLD.plot_type_id] is stored

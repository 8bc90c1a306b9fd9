"""The whole bad-input corpus (tests/badinput) dropped among a drill's plots.

Phase 1 kinds go in a few at a time between faults, phase 2 kinds (duplicates of an image
already fed) once that image has its row. Afterwards every kind is checked against what it
documents, from what the feeder really did: the file in ``quarantine/<reason>/`` with its
note and the feeder's log line, a skipped file left in place and logged, or the rows it got
(model verdicts, Error verdicts for the two broken models, two rows for a rewrite).
``kinds_as_documented`` is the number of kinds whose outcome was seen; ``refused`` those
among them the feeder quarantined or skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from tests.badinput import corpus as c  # noqa: E402
from tests.badinput import outcomes as o  # noqa: E402

setup_hall = o.setup_hall
corpus_settings = o.settings
error_paths = o.error_paths
corpus_paths = o.corpus_paths
REFUSED = (c.QUARANTINED, c.SKIPPED)


@dataclass
class CorpusResult:
    """What the corpus check found."""

    kinds: int = 0  # kinds in the corpus
    dropped: int = 0  # kinds the drill wrote
    as_documented: int = 0  # kinds whose documented outcome was seen
    refused: int = 0  # of those, quarantined or skipped by the feeder
    by_reason: dict[str, int] = field(default_factory=dict)  # refused kinds per reason
    problems: dict[str, list[str]] = field(default_factory=dict)


class CorpusDrops:
    """Writes the corpus's kinds into the input directory, a few at a time."""

    def __init__(self, input_dir: Path, outside_dir: Path, seed: int = 0) -> None:
        self.ctx = c.Context(input_dir=input_dir, outside_dir=outside_dir, seed=seed)
        self.pending = [k for k in c.KINDS if k.phase == 1]
        self.later = [k for k in c.KINDS if k.phase == 2]
        self.dropped: list[c.Kind] = []
        self.started = False

    def drop(self, count: int) -> list[str]:
        """Write the next ``count`` phase-1 kinds (the duplicates' source image first)."""
        if not self.started:
            c.write_duplicate_source(self.ctx)
            self.started = True
        names = []
        for _ in range(min(count, len(self.pending))):
            kind = self.pending.pop(0)
            kind.make(self.ctx)
            self.dropped.append(kind)
            names.append(kind.name)
        return names

    def finish(
        self, has_row: Callable[[str], bool], wait: Callable[[Callable[[], bool]], object]
    ) -> None:
        """Write what is left: phase 1, then phase 2 once the image it repeats has its row."""
        self.drop(len(self.pending))
        wait(lambda: has_row(c.DUP_REL))
        for kind in self.later:
            kind.make(self.ctx)
            self.dropped.append(kind)
        self.later = []

    def expected_rows(self) -> int:
        """run_history rows the kinds dropped so far must end with."""
        per = {c.VERDICT: 1, c.ERROR_VERDICT: 1, c.FED_AGAIN: 1}
        return sum(per.get(k.outcome, 0) for k in self.dropped) + self.started  # + DUP_REL

    def check(
        self,
        quarantine_dir: Path,
        rows: Mapping[str, Sequence[tuple[str, int]]],
        feeder_log: Sequence[str],
    ) -> CorpusResult:
        """Each dropped kind against its documented outcome."""
        result = CorpusResult(kinds=len(c.KINDS), dropped=len(self.dropped))
        for kind in self.dropped:
            problems = o.check_kind(kind, self.ctx.input_dir, quarantine_dir, rows, feeder_log)
            if problems:
                result.problems[kind.name] = problems
                continue
            result.as_documented += 1
            if kind.outcome in REFUSED and kind.reason:
                result.refused += 1
                result.by_reason[kind.reason] = result.by_reason.get(kind.reason, 0) + 1
        return result

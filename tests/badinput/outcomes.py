"""The hall a corpus needs, and the check of each kind's outcome (shared by the corpus test
and the fault drill, which drops the whole corpus among its plots while it kills services).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.badinput import corpus as c

MODEL_LABELS = ("Good", "Bad")


def settings() -> dict[str, str]:
    """The stack settings the corpus is built for (see the constants in corpus.py)."""
    return {
        "HYDRA_MAX_FILE_BYTES": str(c.MAX_FILE_BYTES),
        "HYDRA_MAX_PIXELS": str(c.MAX_PIXELS),
    }


def setup_hall(url: str, model_dir: Path) -> None:
    """Plot types and models the corpus expects (see tests/badinput/corpus.py)."""
    from hydra_common.db import schema as s
    from hydra_common.db.engine import make_engine, make_sessionmaker
    from hydra_trainer.export import export_untrained_model
    from hydra_trainer.store import add_plot_type

    export_untrained_model(model_dir, c.GOOD, 1, MODEL_LABELS, input_size=32)
    for name in (c.JPEG_TYPE, c.FAILING):
        shutil.copytree(model_dir / c.GOOD, model_dir / name)
    # name -> (file type, label order of its model row; None = no model)
    models: dict[str, tuple[str, tuple[str, ...] | None]] = {
        c.GOOD: ("png", MODEL_LABELS),
        c.JPEG_TYPE: ("jpg", MODEL_LABELS),
        c.MISSING: ("png", MODEL_LABELS),  # no files on the model server
        c.FAILING: ("png", (*MODEL_LABELS, "NoData")),  # the model gives 2 weights, not 3
        c.IGNORED: ("png", None),
    }

    async def run() -> None:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                for name, (file_type, labels) in models.items():
                    pt = await add_plot_type(
                        session,
                        name,
                        ("Good", "Bad", "NoData"),
                        detector="BI",
                        collect_percent=0.0,
                        file_type=file_type,
                    )
                    pt.ignored = name == c.IGNORED
                    if labels is None:
                        continue
                    model = s.Model(
                        plot_type_id=pt.id,
                        name=name,
                        version=1,
                        architecture="small",
                        input_height=32,
                        input_width=32,
                        label_order=list(labels),
                        status=s.ModelStatus.ACTIVE,
                        trained_by="badinput",
                    )
                    session.add(model)
                    await session.flush()
                    pt.active_model_id = model.id
        finally:
            await engine.dispose()

    asyncio.run(run())


def error_paths() -> set[str]:
    """Source paths whose one row is meant to carry the verdict Error."""
    return {k.rel for k in c.KINDS if k.outcome == c.ERROR_VERDICT}


def corpus_paths() -> set[str]:
    """Every source path the corpus may leave a row for."""
    return {k.rel for k in c.KINDS} | {c.DUP_REL}


def as_logged(rel: str) -> str:
    """A path as the services' logs write it (stderr's error handler, backslashreplace)."""
    return rel.encode("utf-8", "backslashreplace").decode()


def check_kind(
    kind: c.Kind,
    input_dir: Path,
    quarantine_dir: Path,
    rows: Mapping[str, Sequence[tuple[str, int]]],
    log_lines: Sequence[str],
) -> list[str]:
    """What is wrong with this kind's outcome (empty when it is as documented).

    ``rows``: source path -> [(verdict, run number)] of run_history; ``log_lines``: the
    feeder's log."""
    problems: list[str] = []
    source = input_dir / kind.rel
    logged = [line for line in log_lines if f"path={as_logged(kind.rel)} " in line + " "]
    mine = list(rows.get(kind.rel, []))
    quarantined = quarantine_dir / (kind.reason or "-") / kind.rel
    if kind.outcome == c.QUARANTINED:
        if source.exists() or source.is_symlink():
            problems.append("still in the input directory")
        if not (quarantined.exists() or quarantined.is_symlink()):
            problems.append(f"not in {quarantined}")
        else:
            notes = [p for p in quarantined.parent.iterdir() if p.name.endswith(".reason.txt")]
            if not any(f"reason: {kind.reason}" in p.read_text() for p in notes):
                problems.append("no note with the reason")
        if not any("file quarantined" in x and f"reason={kind.reason}" in x for x in logged):
            problems.append(f"no log line 'file quarantined' with reason={kind.reason}")
    elif kind.outcome == c.SKIPPED:
        if not source.is_file():
            problems.append("a skipped file must stay in place")
        if not any("file skipped" in x and f"reason={kind.reason}" in x for x in logged):
            problems.append(f"no log line 'file skipped' with reason={kind.reason}")
    elif kind.outcome in (c.NOT_A_FILE, c.FORGOTTEN):
        # A file deleted between the stability check and the read is logged as vanished.
        unexpected = [x for x in logged if "reason=vanished" not in x]
        if unexpected or (kind.outcome == c.NOT_A_FILE and logged):
            problems.append(f"logged: {logged[:2]}")
        if kind.outcome == c.NOT_A_FILE and not source.exists():
            problems.append("it must be left alone")
    if kind.outcome in (c.QUARANTINED, c.SKIPPED, c.NOT_A_FILE, c.FORGOTTEN) and mine:
        problems.append(f"has run_history rows {mine}")
    if kind.outcome == c.VERDICT:
        if len(mine) != 1 or mine[0][0] not in MODEL_LABELS:
            problems.append(f"wants one row with a model verdict, has {mine}")
    elif kind.outcome == c.ERROR_VERDICT:
        if [v for v, _ in mine] != ["Error"]:
            problems.append(f"wants one Error row, has {mine}")
    elif kind.outcome == c.FED_AGAIN and len(mine) != 2:
        problems.append(f"wants two rows (first write and rewrite), has {mine}")
    return problems

"""The fault drill's short form: every service and MariaDB SIGKILLed once while plots and the
whole bad-input corpus flow, and the image volume and the database volume running full once
each; nothing lost.

The long form is ``make drill`` (``bench/drill.py``, which this test runs with smaller
figures): a supervised local stack on the drill's own MariaDB server (its own data directory,
port and socket: the machine's shared server is never touched), a simulator writing plots
all along, each of feeder, balancer, predictor, keeper, model server, model config writer and
API killed once at a random moment and restarted by the launcher's supervisor, and MariaDB
killed with SIGKILL and restarted on the same data (InnoDB crash recovery). Every image
written must end with exactly one ``run_history`` row, every corpus kind with its documented
outcome, and every service must have come back on its own.

The disk-full episodes need small tmpfs volumes; where this machine cannot mount one (no
CAP_SYS_ADMIN) the drill says so in ``disk_full_note`` and ``db_full_note``, and this test
checks those notes instead. The database episode costs about 10 s (a table runs out of room
within seconds, it is held full 5 s, verdicts flow again a second or two after the space
returns), so the short form keeps it.
"""

from __future__ import annotations

import pytest

from bench.drill import Drill, DrillConfig
from hydra_testsupport.harness import KILLABLE

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_every_image_survives_a_kill_of_every_service_and_of_mariadb() -> None:
    cfg = DrillConfig(
        images=300,
        cycles=1,
        interval=0.4,
        gap=(0.5, 3.0),
        seed=7,
        kill_until_images=False,
        recover_timeout=240.0,
        drain_timeout=300.0,
        volume_mb=128,
    )
    out = Drill(cfg).run(progress=lambda _line: None)
    where = f"(logs and database kept in {out.data_dir})"
    figures = out.figures()

    assert out.failures() == [], where
    assert out.simulator_error == ""
    assert out.images >= 300
    # Every fault happened, and the pipeline moved again after each one on its own.
    assert sorted(k.target for k in out.kills) == sorted({*KILLABLE, "mariadb"})
    assert [k.target for k in out.kills if k.recover_s is None] == [], where
    for service in KILLABLE:
        assert out.restarts[service] >= 1, f"{service} was not restarted {where}"
    # Two model servers, as a hall runs them: the killed one came back on its own, and the
    # verdicts went on through the other meanwhile (recovery well before its restart).
    (ms,) = [k for k in out.kills if k.target == "modelserver"]
    assert ms.restart_s is not None and ms.recover_s is not None, where
    assert ms.recover_s < ms.restart_s, (ms, where)
    # MariaDB died by SIGKILL, and InnoDB recovered from the crash.
    assert figures["mariadb_kill9"] == 1
    assert figures["mariadb_crash_recoveries"] >= 1, where
    # Nothing lost, nothing twice: by order id, by source file, by (plot type, run, chunk).
    assert out.lost == 0, f"{out.lost} images without a verdict, e.g. {out.lost_examples} {where}"
    assert out.duplicates == 0, where
    assert out.duplicate_plot_chunks == 0
    assert out.unexpected_rows == 0
    assert out.ledger_pending == 0  # the feeder's ledger knows every order is done
    # Error verdicts only for the corpus's two broken models.
    assert out.unexpected_error_rows == [], where
    assert out.expected_error_rows == 2
    # The whole bad-input corpus went in among the plots, each kind as documented.
    assert out.corpus.dropped == out.corpus.kinds
    assert out.corpus.problems == {}, where
    assert figures["bad_input_kinds"] == out.corpus.kinds >= 25
    assert figures["bad_input_refused"] >= 15  # quarantined or skipped, seen on disk and in logs
    assert out.bad_files_with_rows == 0
    assert out.bad_files_misplaced == []
    # Each volume ran full once where this machine could mount it (else a note says why not).
    for name, note in (("disk_full", out.disk_full_note), ("db_full", out.db_full_note)):
        assert not note or "mount" in note, note
        assert figures[f"{name}_episodes"] == (0 if note else 1), figures[name]
    # The image volume: verdicts went on, files were skipped, keeping resumed.
    for episode in out.disk_full:
        assert episode.skipped_disk_full > 0
        assert episode.rows_while_full >= 3
        assert episode.quarantine_refused and episode.quarantine_resumed
        assert episode.quarantine_caught_up  # the refused file, moved once space returned
        assert episode.resumed_s is not None
    # The database volume: InnoDB refused the keeper's writes (the chart's
    # HydraDatabaseWriteErrors fires) or the feeder's ledger writes (HydraFeederLedgerErrors),
    # whichever table had to grow first; they were logged and retried, MariaDB stayed up, and
    # verdicts were committed again once space returned; the end checks above found nothing lost.
    for db in out.db_full:
        assert db.stall_s is not None and (db.mariadb_up or db.mariadb_restarted), db
        if db.mariadb_up:
            assert db.keeper_log_lines > 0 or db.feeder_log_lines > 0, db
        if db.write_errors > 0:
            assert db.keeper_log_lines > 0 and "HydraDatabaseWriteErrors" in db.alert
        if db.ledger_errors > 0:
            assert db.feeder_log_lines > 0 and "HydraFeederLedgerErrors" in db.alert
        assert db.alert, db  # some rule fires for every refusal
        assert db.resumed_s is not None
    # A killed neighbour (or MariaDB dying) crashed nothing else.
    assert out.unexpected_restarts == {}, where

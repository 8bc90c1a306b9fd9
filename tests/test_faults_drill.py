"""The fault drill's short form: every service SIGKILLed once while plots flow; nothing lost.

The long form is ``make drill`` (``bench/drill.py``, which this test runs with smaller
figures): a supervised local stack on a fresh MariaDB database, a simulator writing plots
all along, each of feeder, balancer, predictor, keeper, model server and API killed once at a
random moment and restarted by the launcher's supervisor. Every image written must end with
exactly one ``run_history`` row, and every service must have come back on its own.

MariaDB itself is restarted only with ``HYDRA_DRILL_RESTART_DB=1``: the server is shared with
every other test on the machine.
"""

from __future__ import annotations

import os

import pytest

from bench.drill import KILLABLE, Drill, DrillConfig

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_every_image_survives_a_kill_of_every_service() -> None:
    restart_db = os.environ.get("HYDRA_DRILL_RESTART_DB") == "1"
    cfg = DrillConfig(
        images=300,
        cycles=1,
        restart_db=restart_db,
        interval=0.4,
        gap=(0.5, 4.0),
        seed=7,
        kill_until_images=False,
        recover_timeout=240.0,
        drain_timeout=300.0,
    )
    out = Drill(cfg).run(progress=lambda _line: None)
    where = f"(logs and database kept in {out.data_dir})"

    assert out.simulator_error == ""
    assert out.images >= 300
    # Every fault happened, and the pipeline moved again after each one on its own.
    expected = {*KILLABLE, "mariadb"} if restart_db else set(KILLABLE)
    assert sorted(k.target for k in out.kills) == sorted(expected)
    assert [k.target for k in out.kills if k.recover_s is None] == [], where
    for service in KILLABLE:
        assert out.restarts[service] >= 1, f"{service} was not restarted {where}"
    # Nothing lost, nothing twice.
    assert out.lost == 0, f"{out.lost} images without a verdict, e.g. {out.lost_examples} {where}"
    assert out.duplicates == 0, where
    assert out.rows == out.images
    assert out.unexpected_rows == 0
    assert out.ledger_pending == 0  # the feeder's ledger knows every order is done
    # Bad files among the plots: never a verdict, each where its reason sends it.
    assert out.bad_files == 5
    assert out.bad_files_with_rows == 0
    assert out.bad_files_misplaced == []
    # A killed neighbour (or MariaDB restarting) crashed nothing else.
    assert out.unexpected_restarts == {}, where

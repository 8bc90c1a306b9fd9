"""Hydra's test support, for the services' tests, ``tests/`` and ``bench/`` (never shipped in
an image): ``mysql`` (a freshly migrated database per test session, and per stack),
``polling`` (wait for a condition with a deadline, never a bare sleep), ``rows`` (the id an
INSERT made, the rows of a query), ``halls`` (a plot type of a test's own and its models),
``stacks`` (a whole local stack on a database and data folder of a test's own), ``names``
(names no other test uses), ``seeding`` (a plot type with a model and thresholds, straight
into the tables; a report's stage times), ``harness`` (the fault tests' and drill's stack,
simulator and supervisor thread)."""

from hydra_testsupport.polling import eventually, eventually_async

__all__ = ["eventually", "eventually_async"]

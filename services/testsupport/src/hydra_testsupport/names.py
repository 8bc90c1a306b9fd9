"""Names of a test's own: tests that share one database (a session's) tell their rows apart
by name, so none sees another's plot types, users or labels."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    """A name no other test uses: the prefix and eight random hex digits."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"

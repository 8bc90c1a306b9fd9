"""Reading back what a test's INSERT made."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import CursorResult


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an ``INSERT`` made (SQLAlchemy types it optional)."""
    key = result.inserted_primary_key
    if key is None:
        raise AssertionError("the INSERT returned no primary key")
    return int(key[0])

"""Write the API's OpenAPI schema to ``frontend/openapi.json`` (the TS client's source).

Run from the repository root: ``.venv/bin/python services/api/scripts/export_openapi.py``
(``--check`` exits 1 when the committed file is stale, for CI).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hydra_api.main import create_app
from hydra_api.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_OUT = ROOT / "frontend" / "openapi.json"


def schema_text() -> str:
    """The OpenAPI schema as stable, pretty JSON."""
    settings = ApiSettings(
        environment="development",
        secret_key="x" * 48,
        database_url="sqlite+aiosqlite:///:memory:",
    )
    return json.dumps(create_app(settings).openapi(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    """Write (or check) the schema file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args()
    text = schema_text()
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            sys.stderr.write(f"{args.out} is stale: run {Path(__file__).name}\n")
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stderr.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

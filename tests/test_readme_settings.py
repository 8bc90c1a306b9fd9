"""The README's configuration table lists every setting the services read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_settings_table_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "tools/settings_table.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HYDRA_INPUT_DIR" in (ROOT / "README.md").read_text()

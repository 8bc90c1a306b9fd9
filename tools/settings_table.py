"""Write the README's configuration table from the settings classes (``--check`` to verify).

Every service's settings subclass ``HydraSettings``; the table lists each ``HYDRA_*``
variable once, with its default, the services that read it and its description. The
services and their settings classes come from the service registry (``hydra.services``
entry points, ``hydra_common.plugins``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings

from hydra_common.plugins import services
from hydra_common.settings import HydraSettings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


@dataclass
class _Row:
    default: object
    services: list[str]
    doc: str


def _classes() -> dict[str, list[type[BaseSettings]]]:
    found: dict[str, list[type[BaseSettings]]] = {"all": [HydraSettings]}
    # "read by" lists the services alphabetically; a shared setting takes the first one's text.
    for descriptor in sorted(services().values(), key=lambda d: d.title):
        if descriptor.settings is not None:
            found.setdefault(descriptor.title, []).append(descriptor.settings)
    return found


def table() -> str:
    """The markdown table of every setting."""
    rows: dict[str, _Row] = {}
    base_fields = set(HydraSettings.model_fields)
    for service, classes in _classes().items():
        for cls in classes:
            for name, field in cls.model_fields.items():
                if service != "all" and name in base_fields:
                    continue
                env = f"HYDRA_{name.upper()}"
                # A computed default (host name, empty mapping) has no fixed value to show.
                default = "" if field.default_factory is not None else field.default
                row = rows.setdefault(env, _Row(default, [], field.description or ""))
                if service not in row.services:
                    row.services.append(service)
    lines = ["| variable | default | read by | meaning |", "|---|---|---|---|"]
    for env in sorted(rows):
        r = rows[env]
        default = "" if r.default in (None, "") else f"`{r.default}`"
        lines.append(f"| `{env}` | {default} | {', '.join(r.services)} | {r.doc} |")
    return "\n".join(lines)


def main() -> int:
    """Rewrite the README section, or with --check fail when it is stale."""
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    if "--check" in sys.argv:
        if new != text:
            print("README settings table is stale: run `python tools/settings_table.py`")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())

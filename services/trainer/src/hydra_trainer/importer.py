"""``hydra import``: bring labelled images into Hydra's storage and database.

Sources: a labelled tree ``DIR/<Label>/*.<ext>`` or a CSV manifest with ``path,label``
columns (paths relative to the manifest's folder or absolute). Every image is checked with
Pillow first; unless ``skip_bad`` is set, one unreadable image or unknown label stops the
import before anything is written. Images are copied to ``imported/<plot_type>/`` under the
storage root and recorded as plots (kept reason ``imported``), labels and label history.
"""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db import schema as s
from hydra_common.errors import InvalidInput
from hydra_common.ids import uuid7
from hydra_common.labels import key as label_key
from hydra_trainer.store import get_plot_type, valid_labels

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp"}
_RUN = re.compile(r"(?:^|[^A-Za-z])Run(\d+)")


@dataclass
class ImportResult:
    """What an import did."""

    imported: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.imported.values())


def scan_tree(root: Path) -> list[tuple[Path, str]]:
    """``(image, label)`` pairs of a labelled tree ``root/<Label>/*``."""
    if not root.is_dir():
        raise InvalidInput(f"not a directory: {root}")
    pairs = [
        (path, label_dir.name)
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(label_dir.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    ]
    return pairs


def read_manifest(manifest: Path) -> list[tuple[Path, str]]:
    """``(image, label)`` pairs from a CSV with ``path`` and ``label`` columns."""
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise InvalidInput(f"{manifest}: the manifest needs 'path' and 'label' columns")
        rows = list(reader)
    base = manifest.parent
    return [
        ((base / r["path"]) if not Path(r["path"]).is_absolute() else Path(r["path"]), r["label"])
        for r in rows
    ]


def check_image(path: Path) -> str | None:
    """Why an image cannot be used, or None when Pillow reads it fully."""
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as exc:  # Pillow raises many types for broken files
        return f"{path}: unreadable image ({type(exc).__name__}: {exc})"
    return None


async def import_images(
    session: AsyncSession,
    pairs: list[tuple[Path, str]],
    plot_type_name: str,
    storage_root: Path,
    *,
    skip_bad: bool = False,
) -> ImportResult:
    """Copy images into storage and record plots, labels and label history."""
    plot_type = await get_plot_type(session, plot_type_name)
    labels = {label_key(c.name): c for c in await valid_labels(session, plot_type.id)}
    result = ImportResult()
    accepted: list[tuple[Path, s.Classification]] = []
    for path, label in pairs:
        problem = check_image(path)
        classification = labels.get(label_key(label))
        if problem is None and classification is None:
            valid = ", ".join(c.name for c in labels.values())
            problem = f"{path}: label {label!r} is not valid for {plot_type_name} ({valid})"
        if problem is not None:
            if not skip_bad:
                raise InvalidInput(problem)
            result.skipped.append(problem)
            continue
        assert classification is not None
        accepted.append((path, classification))
    if not accepted:
        raise InvalidInput(f"no importable images for {plot_type_name}")
    target = storage_root / "imported" / plot_type_name
    target.mkdir(parents=True, exist_ok=True)
    for path, classification in accepted:
        stored = target / f"{uuid7()}{path.suffix.lower()}"
        shutil.copyfile(path, stored)
        run = _RUN.search(str(path))
        plot = s.Plot(
            plot_type_id=plot_type.id,
            run_number=int(run.group(1)) if run else 0,
            image_path=str(stored.relative_to(storage_root)),
            kept_reason=s.KeptReason.IMPORTED,
            source_path=str(path)[-1024:],
        )
        session.add(plot)
        await session.flush()
        session.add(
            s.Label(plot_id=plot.id, plot_type_id=plot_type.id, classification_id=classification.id)
        )
        session.add(
            s.LabelHistory(
                plot_id=plot.id, new_classification_id=classification.id, source="import"
            )
        )
        result.imported[classification.name] = result.imported.get(classification.name, 0) + 1
    await session.flush()
    return result

"""The hall's labels (classifications): list them; admins add labels and change them.

The rules live in ``hydra_common.labels`` (shared with ``hydra label``), the audited changes
in ``hydra_api.domain.classifications``; this router parses, authorises and shapes the answer.
"""

from __future__ import annotations

from fastapi import APIRouter

from hydra_api.deps import AdminUser, Reader, SessionDep
from hydra_api.domain import classifications
from hydra_api.inputs import Id
from hydra_api.models import ClassificationIn, ClassificationOut, ClassificationUpdate, Page
from hydra_common import labels

router = APIRouter(tags=["classifications"])


@router.get("/api/classifications", response_model=Page[ClassificationOut])
async def list_classifications(session: SessionDep, _reader: Reader) -> Page[ClassificationOut]:
    """Every label with its colour and flags, oldest first (a few dozen at most)."""
    items = [ClassificationOut.model_validate(c) for c in await labels.list_labels(session)]
    return Page(items=items, total=len(items))


@router.post("/api/classifications", response_model=ClassificationOut, status_code=201)
async def create_classification(
    body: ClassificationIn, session: SessionDep, admin: AdminUser
) -> ClassificationOut:
    """Add a label to the hall's set (409 when one of the same name exists, ignoring case)."""
    return await classifications.create(session, body, admin)


@router.patch("/api/classifications/{classification_id}", response_model=ClassificationOut)
async def update_classification(
    classification_id: Id, body: ClassificationUpdate, session: SessionDep, admin: AdminUser
) -> ClassificationOut:
    """Change a label's colour, description, alarm or trainable flag (for every plot type)."""
    return await classifications.update(session, classification_id, body, admin)

"""News items shown on every page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hydra_api.common import PageDep
from hydra_api.deps import NewsEditor, Reader, SessionDep
from hydra_api.domain import news
from hydra_api.domain.permissions import NEWS_EDITORS
from hydra_api.inputs import Id
from hydra_api.models import Detail, NewsIn, NewsOut, NewsUpdate, Page
from hydra_common.errors import PermissionDenied

router = APIRouter(tags=["news"])


@router.get("/api/news", response_model=Page[NewsOut])
async def list_news(
    session: SessionDep,
    page: PageDep,
    reader: Reader,
    include_expired: Annotated[
        bool, Query(description="Expired items too (admins, developers, liaisons).")
    ] = False,
) -> Page[NewsOut]:
    """Current news (not expired), newest first."""
    if include_expired and (reader is None or reader.role not in NEWS_EDITORS):
        raise PermissionDenied("only those who post news see expired news")
    return await news.list_news(session, page, include_expired)


@router.post("/api/news", response_model=NewsOut, status_code=201)
async def create_news(body: NewsIn, session: SessionDep, user: NewsEditor) -> NewsOut:
    """Publish a news item (admins, developers, liaisons)."""
    return await news.create_news(session, body, user)


@router.patch("/api/news/{news_id}", response_model=NewsOut)
async def update_news(
    news_id: Id, body: NewsUpdate, session: SessionDep, user: NewsEditor
) -> NewsOut:
    """Change a news item; ``expires_at`` set to now takes it off the banner at once."""
    fields = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k == "expires_at"
    }
    return await news.update_news(session, news_id, fields, user)


@router.delete("/api/news/{news_id}", response_model=Detail)
async def delete_news(news_id: Id, session: SessionDep, user: NewsEditor) -> Detail:
    """Remove a news item."""
    await news.delete_news(session, news_id, user)
    return Detail(detail="deleted")

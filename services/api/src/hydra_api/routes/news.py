"""News items shown on every page."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import PageDep, audit, count
from hydra_api.deps import NEWS_EDITORS, NewsEditor, Reader, SessionDep
from hydra_api.inputs import Id
from hydra_api.models import Detail, NewsIn, NewsOut, NewsUpdate, Page
from hydra_common.db.schema import News, utcnow
from hydra_common.errors import NotFound, PermissionDenied

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
    stmt = sa.select(News)
    if include_expired:
        if reader is None or reader.role not in NEWS_EDITORS:
            raise PermissionDenied("only those who post news see expired news")
    else:
        stmt = stmt.where(sa.or_(News.expires_at.is_(None), News.expires_at > utcnow()))
    total = await count(session, stmt)
    rows = await session.scalars(
        stmt.order_by(News.created_at.desc(), News.id.desc()).limit(page.limit).offset(page.offset)
    )
    items = [NewsOut.model_validate(n) for n in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


@router.post("/api/news", response_model=NewsOut, status_code=201)
async def create_news(body: NewsIn, session: SessionDep, user: NewsEditor) -> NewsOut:
    """Publish a news item (admins, developers, liaisons)."""
    item = News(**body.model_dump(), author=user.username)
    session.add(item)
    await session.flush()
    audit(session, user, "create", "news", item.id, after=body.model_dump(mode="json"))
    await session.commit()
    return NewsOut.model_validate(item)


async def _get(session: AsyncSession, news_id: int) -> News:
    item = await session.get(News, news_id)
    if item is None:
        raise NotFound(f"no news item {news_id}")
    return item


@router.patch("/api/news/{news_id}", response_model=NewsOut)
async def update_news(
    news_id: Id, body: NewsUpdate, session: SessionDep, user: NewsEditor
) -> NewsOut:
    """Change a news item; ``expires_at`` set to now takes it off the banner at once."""
    item = await _get(session, news_id)
    fields = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k == "expires_at"
    }
    before = NewsOut.model_validate(item).model_dump(mode="json")
    for k, v in fields.items():
        setattr(item, k, v)
    after = NewsOut.model_validate(item).model_dump(mode="json")
    audit(session, user, "update", "news", item.id, before=before, after=after)
    await session.commit()
    return NewsOut.model_validate(item)


@router.delete("/api/news/{news_id}", response_model=Detail)
async def delete_news(news_id: Id, session: SessionDep, user: NewsEditor) -> Detail:
    """Remove a news item."""
    item = await _get(session, news_id)
    audit(
        session,
        user,
        "delete",
        "news",
        item.id,
        before=NewsOut.model_validate(item).model_dump(mode="json"),
    )
    await session.delete(item)
    await session.commit()
    return Detail(detail="deleted")

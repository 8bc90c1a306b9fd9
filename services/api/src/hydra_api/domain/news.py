"""News items: the current ones, and publishing, changing and removing them (audited)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination, audit
from hydra_api.domain.queries import count
from hydra_api.models import NewsIn, NewsOut, Page
from hydra_common.db.schema import News, User, utcnow
from hydra_common.errors import NotFound


async def list_news(
    session: AsyncSession, page: Pagination, include_expired: bool = False
) -> Page[NewsOut]:
    """News (only the unexpired unless include_expired), newest first."""
    stmt = sa.select(News)
    if not include_expired:
        stmt = stmt.where(sa.or_(News.expires_at.is_(None), News.expires_at > utcnow()))
    total = await count(session, stmt)
    rows = await session.scalars(
        stmt.order_by(News.created_at.desc(), News.id.desc()).limit(page.limit).offset(page.offset)
    )
    items = [NewsOut.model_validate(n) for n in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


async def create_news(session: AsyncSession, body: NewsIn, user: User) -> NewsOut:
    """Publish a news item by user."""
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


async def update_news(
    session: AsyncSession, news_id: int, fields: dict[str, Any], user: User
) -> NewsOut:
    """Set the given fields of a news item."""
    item = await _get(session, news_id)
    before = NewsOut.model_validate(item).model_dump(mode="json")
    for k, v in fields.items():
        setattr(item, k, v)
    after = NewsOut.model_validate(item).model_dump(mode="json")
    audit(session, user, "update", "news", item.id, before=before, after=after)
    await session.commit()
    return NewsOut.model_validate(item)


async def delete_news(session: AsyncSession, news_id: int, user: User) -> None:
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

"""Who may change what of a plot type: label its images, change its models and thresholds,
set its masks; and who may edit the news.

Some roles may do a thing for every plot type; scoped roles only for the plot types that
``user_permissions`` grants them (an admin sets those on the Users page).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.schema import Role, User, UserPermission
from hydra_common.errors import PermissionDenied

NEWS_EDITORS = frozenset({Role.ADMIN, Role.DEVELOPER, Role.LIAISON})
LABEL_ANY = frozenset({Role.ADMIN, Role.DEVELOPER})
LABEL_SCOPED = frozenset({Role.EXPERT, Role.LABELER})
MODEL_ANY = frozenset({Role.ADMIN, Role.DEVELOPER})
MODEL_SCOPED = frozenset({Role.EXPERT})
MASK_ANY = frozenset({Role.ADMIN})
MASK_SCOPED = frozenset({Role.EXPERT})


async def has_plot_type_permission(session: AsyncSession, user: User, plot_type_id: int) -> bool:
    """True when user_permissions grants the user this plot type."""
    row = await session.get(UserPermission, (user.id, plot_type_id))
    return row is not None


async def _check(
    session: AsyncSession,
    user: User,
    plot_type_id: int,
    anywhere: frozenset[Role],
    scoped: frozenset[Role],
    refusal: str,
) -> None:
    if user.role in anywhere:
        return
    if user.role in scoped and await has_plot_type_permission(session, user, plot_type_id):
        return
    raise PermissionDenied(refusal)


async def check_labelling(session: AsyncSession, user: User, plot_type_id: int) -> None:
    """Refuse (403) a user who may not label this plot type."""
    await _check(
        session, user, plot_type_id, LABEL_ANY, LABEL_SCOPED, "you may not label this plot type"
    )


async def check_model_editing(session: AsyncSession, user: User, plot_type_id: int) -> None:
    """Refuse (403) a user who may not change this plot type's models or thresholds."""
    await _check(
        session,
        user,
        plot_type_id,
        MODEL_ANY,
        MODEL_SCOPED,
        "you may not change this plot type's models",
    )


async def check_mask_editing(session: AsyncSession, user: User, plot_type_id: int) -> None:
    """Refuse (403) anyone but an admin, or an expert with the plot type's permission."""
    await _check(
        session,
        user,
        plot_type_id,
        MASK_ANY,
        MASK_SCOPED,
        "only an admin, or an expert of this plot type, may set its masks",
    )

"""The API's ``hydra`` commands: ``hydra api`` and ``hydra user add|list|disable|enable|grant|
revoke``. Every change is written to the audit log as user ``cli``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from hydra_api.settings import ApiSettings
from hydra_common.db.schema import Role
from hydra_common.plugins import Listener, ServiceDescriptor

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def add_user(
    url: str, username: str, role: Role, password: str | None, display_name: str = ""
) -> bool:
    """Create a user, or update the role (and password) of an existing one; True if created."""
    import sqlalchemy as sa

    from hydra_api.security import hash_password
    from hydra_common.db.engine import make_engine, make_sessionmaker
    from hydra_common.db.schema import AuditLog, User

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            user = await session.scalar(sa.select(User).where(User.username == username))
            created = user is None
            before = {} if user is None else {"role": user.role.value}
            if user is None:
                user = User(username=username, display_name=display_name or username)
                session.add(user)
            user.role = role
            if password:
                user.password_hash = hash_password(password)
            await session.flush()
            session.add(
                AuditLog(
                    username="cli",
                    action="create" if created else "update",
                    entity="user",
                    entity_id=str(user.id),
                    before=before,
                    after={"role": role.value, "password": "set" if password else "unchanged"},
                )
            )
            await session.commit()
            return created
    finally:
        await engine.dispose()


async def _in_session(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run work in one session on the database at url, then commit."""
    from hydra_common.db.engine import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class UserRow:
    """One line of ``hydra user list``."""

    username: str
    role: str
    active: bool
    local: bool
    permissions: list[str]


async def list_users(url: str) -> list[UserRow]:
    """Every user by name, with role, state and the plot types they may label."""
    import sqlalchemy as sa

    from hydra_common.db.schema import PlotType, User, UserPermission

    async def work(session: AsyncSession) -> list[UserRow]:
        perms: dict[int, list[str]] = {}
        for uid, name in (
            await session.execute(
                sa.select(UserPermission.user_id, PlotType.name)
                .join(PlotType, PlotType.id == UserPermission.plot_type_id)
                .order_by(PlotType.name)
            )
        ).tuples():
            perms.setdefault(uid, []).append(name)
        users = await session.scalars(sa.select(User).order_by(User.username))
        return [
            UserRow(u.username, u.role.value, u.active, bool(u.password_hash), perms.get(u.id, []))
            for u in users
        ]

    return await _in_session(url, work)


def _audit(session: AsyncSession, action: str, user_id: int, **after: object) -> None:
    from hydra_common.db.schema import AuditLog

    session.add(
        AuditLog(username="cli", action=action, entity="user", entity_id=str(user_id), after=after)
    )


async def set_user_active(url: str, username: str, active: bool) -> bool:
    """Enable or disable a user (disabling ends their sessions); True if it changed."""
    from hydra_api import accounts

    async def work(session: AsyncSession) -> bool:
        user = await accounts.user_by_name(session, username)
        changed = accounts.set_active(user, active)
        if changed:
            _audit(session, "update", user.id, active=active)
        return changed

    return await _in_session(url, work)


async def change_permissions(
    url: str, username: str, plot_types: list[str] | None, grant: bool
) -> list[str]:
    """Grant plot types to a user, or revoke them (None: all); returns what changed."""
    from hydra_api import accounts

    async def work(session: AsyncSession) -> list[str]:
        user = await accounts.user_by_name(session, username)
        if grant:
            changed = await accounts.grant(session, user, plot_types or [])
        else:
            changed = await accounts.revoke(session, user, plot_types)
        if changed:
            _audit(session, "grant" if grant else "revoke", user.id, plot_types=changed)
        return changed

    return await _in_session(url, work)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; Hydra's errors (unknown user, plot type) exit 1 with the
    message, not a traceback."""
    from hydra_common.errors import HydraError

    try:
        return asyncio.run(coro)
    except HydraError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    """Add ``hydra api`` and ``hydra user`` to the command line."""
    user_app = typer.Typer(help="Manage Hydra's users.", no_args_is_help=True)
    app.add_typer(user_app, name="user")

    @app.command("api")
    def api() -> None:
        """Run the REST API, the live event stream and the web front end."""
        from hydra_api.main import main
        from hydra_api.settings import ApiSettings

        asyncio.run(main(ApiSettings()))

    @user_app.command("add")
    def user_add(
        username: str = typer.Argument(..., help="Login name."),
        role: Role = typer.Option(Role.VIEWER, "--role", help="Role of the user."),
        password: str | None = typer.Option(
            None, "--password", help="Local password (omit for single sign-on only)."
        ),
        display_name: str = typer.Option("", "--name", help="Display name."),
    ) -> None:
        """Create a user (or change an existing user's role and password)."""
        from hydra_api.settings import ApiSettings

        if password is not None and len(password) < 8:
            raise typer.BadParameter("at least 8 characters", param_hint="--password")
        created = asyncio.run(
            add_user(ApiSettings().db_url, username, role, password, display_name)
        )
        typer.echo(f"user {username} {'created' if created else 'updated'} as {role.value}")

    @user_app.command("list")
    def user_list() -> None:
        """Every user: name, role, active or disabled, local or SSO, plot types to label."""
        from hydra_api.settings import ApiSettings

        rows = _run(list_users(ApiSettings().db_url))
        for r in rows:
            state = "active" if r.active else "disabled"
            login = "local" if r.local else "sso"
            perms = ",".join(r.permissions) or "-"
            typer.echo(f"{r.username}\t{r.role}\t{state}\t{login}\t{perms}")
        typer.echo(f"{len(rows)} users", err=True)

    @user_app.command("disable")
    def user_disable(username: str = typer.Argument(..., help="Login name.")) -> None:
        """Stop a user logging in; their sessions end at once."""
        from hydra_api.settings import ApiSettings

        changed = _run(set_user_active(ApiSettings().db_url, username, False))
        typer.echo(f"user {username} {'disabled' if changed else 'was already disabled'}")

    @user_app.command("enable")
    def user_enable(username: str = typer.Argument(..., help="Login name.")) -> None:
        """Let a disabled user log in again."""
        from hydra_api.settings import ApiSettings

        changed = _run(set_user_active(ApiSettings().db_url, username, True))
        typer.echo(f"user {username} {'enabled' if changed else 'was already enabled'}")

    @user_app.command("grant")
    def user_grant(
        username: str = typer.Argument(..., help="Login name."),
        plot_types: list[str] = typer.Argument(..., help="Plot types the user may label."),
    ) -> None:
        """Let a user label these plot types (experts also edit their models)."""
        from hydra_api.settings import ApiSettings

        added = _run(change_permissions(ApiSettings().db_url, username, plot_types, True))
        typer.echo(f"granted {username}: {', '.join(added) or 'nothing new'}")

    @user_app.command("revoke")
    def user_revoke(
        username: str = typer.Argument(..., help="Login name."),
        plot_types: list[str] | None = typer.Argument(
            None, help="Plot types to take away (none given: every one)."
        ),
        all_: bool = typer.Option(False, "--all", help="Take every plot type away."),
    ) -> None:
        """Stop a user labelling these plot types (``--all``: every one)."""
        from hydra_api.settings import ApiSettings

        if not plot_types and not all_:
            raise typer.BadParameter("name plot types, or --all", param_hint="PLOT_TYPES")
        names = None if all_ else plot_types
        removed = _run(change_permissions(ApiSettings().db_url, username, names, False))
        typer.echo(f"revoked {username}: {', '.join(removed) or 'nothing'}")


SERVICE = ServiceDescriptor(
    name="api",
    title="api",
    settings=ApiSettings,
    register_cli=register,
    module="hydra_api",
    # Its /metrics is on its own port, beside the REST API.
    listener=Listener(
        "api_port", "api_host", "API HTTP", protocol="http", health_path="/api/health"
    ),
    order=60,
    stop_order=50,
    image_command=("api",),
)

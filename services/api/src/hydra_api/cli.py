"""The API's ``hydra`` commands: ``hydra api`` and ``hydra user add``."""

from __future__ import annotations

import asyncio

import typer

from hydra_common.db.schema import Role


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

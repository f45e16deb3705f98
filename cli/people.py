"""People and key commands on the host: `users create|list|disable|enable`, `keys create|list|revoke`.

They work on the configured database directly (no running service needed): this is how the first admin of
any database is made. Every change is a chain entry naming the host account that ran the command. Secrets
(a key, a one-time password) are printed once, alone on the last line of stdout, and never logged.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import typer

from rulesvc.apikeys import Role, actor_name
from rulesvc.settings import Settings

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from rulesvc.people.service import PeopleService

users_app = typer.Typer(
    help="People and service accounts (on the host, no service needed).", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys (stored as SHA-256 hashes only).", no_args_is_help=True)
oidc_app = typer.Typer(help="Single sign-on (OIDC) settings.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.add_typer(oidc_app, name="oidc")


def host_actor() -> str:
    """Who acts from the command line, as the chain names them: the host account."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):
        account = "unknown"
    return actor_name(f"host:{account}", "主机命令行")


def _people() -> AbstractContextManager[PeopleService]:
    from rulesvc.wiring.database import people_admin

    return people_admin(Settings())


def _fail(exc: Exception) -> typer.Exit:
    from rulesvc.people.errors import PeopleError

    message = f"{exc.code}: {exc.message}" if isinstance(exc, PeopleError) else str(exc)
    typer.echo(message, err=True)
    return typer.Exit(2 if isinstance(exc, PeopleError) and exc.code == "people.invalid" else 1)


ROLE_HELP = f"role ({', '.join(r.value for r in Role)}); repeatable"


@users_app.command("create")
def users_create(
    name: str = typer.Option(..., "--name", help="display name, e.g. 张敏; also the sign-in name"),
    role: list[str] = typer.Option(..., "--role", help=ROLE_HELP),
) -> None:
    """Create a person; prints the user id, then a one-time password alone on the last line."""
    from rulesvc.people.errors import PeopleError

    try:
        with _people() as people:
            created = people.create_user(host_actor(), name, role, one_time=True)
    except PeopleError as exc:
        raise _fail(exc) from exc
    user = created.user
    typer.echo(f"user_id: {user.principal_id}")
    typer.echo(
        f"登录名：{user.username}  角色：{','.join(sorted(user.roles))}（一次性密码只显示这一次）", err=True
    )
    typer.echo(created.password)


@users_app.command("list")
def users_list() -> None:
    """List people and service accounts (id, kind, status, roles, sign-in name, name)."""
    with _people() as people:
        users = people.principals()
    for user in users:
        status = "disabled" if user.disabled else "enabled"
        roles = ",".join(sorted(user.roles))
        typer.echo(
            f"{user.principal_id}\t{user.kind}\t{status}\t{roles}\t{user.username or '-'}\t{user.name}"
        )


def _set_disabled(user_id: str, disabled: bool) -> None:
    from rulesvc.people.errors import PeopleError

    try:
        with _people() as people:
            user = people.update(host_actor(), user_id, disabled=disabled)
    except PeopleError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{user.principal_id} {'disabled' if user.disabled else 'enabled'}")


@users_app.command("disable")
def users_disable(user_id: str = typer.Argument(..., help="the user id shown by `users list`")) -> None:
    """Disable a person or service account: their keys and sessions stop working at once."""
    _set_disabled(user_id, True)


@users_app.command("enable")
def users_enable(user_id: str = typer.Argument(..., help="the user id shown by `users list`")) -> None:
    """Enable a disabled person or service account again."""
    _set_disabled(user_id, False)


@keys_app.command("create")
def keys_create(
    role: list[str] = typer.Option(..., "--role", help=ROLE_HELP),
    user: str | None = typer.Option(None, "--user", help="the person or service account owning the key"),
    label: str = typer.Option("", "--label", help="who or what the key is for"),
) -> None:
    """Create an API key; the key is printed once, alone on the last line. Without --user the key gets a
    service account of its own; with it, the key's roles may not exceed that person's."""
    from rulesvc.apikeys import parse_roles
    from rulesvc.people.errors import PeopleError

    try:
        parse_roles(role)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    try:
        with _people() as people:
            created = people.create_key(host_actor(), user, role, label)
    except PeopleError as exc:
        raise _fail(exc) from exc
    owner = created.owner
    line = f"key_id: {created.key_id}  roles: {','.join(sorted(created.roles))}"
    typer.echo(f"{line}  owner: {owner.name} ({owner.principal_id})" if user else line, err=True)
    typer.echo(created.key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (id, roles, created, status, label, owner); never the keys themselves."""
    with _people() as people:
        views = people.all_keys()
    for view in views:
        status = (
            f"revoked {view.revoked_at.isoformat()}" if view.revoked_at else view.status(people.clock.now())
        )
        if view.expires_at is not None and view.revoked_at is None:
            status += f" until {view.expires_at.isoformat()}"
        roles = ",".join(sorted(view.roles))
        owner = view.owner.principal_id if view.owner else "-"
        typer.echo(f"{view.key_id}\t{roles}\t{view.created_at.isoformat()}\t{status}\t{view.label}\t{owner}")


@keys_app.command("rotate")
def keys_rotate(
    key_id: str = typer.Argument(..., help="the key id shown by `keys list`"),
    overlap_hours: float = typer.Option(
        24.0, "--overlap-hours", min=0, max=720, help="hours the old key keeps working (0: stops now)"
    ),
) -> None:
    """Rotate a key: a new key for the same owner, roles and label, printed once alone on the last line;
    the old key keeps working for --overlap-hours so its callers can switch without an outage."""
    from datetime import timedelta

    from rulesvc.people.errors import PeopleError

    try:
        with _people() as people:
            created, old = people.rotate_key(host_actor(), key_id, timedelta(hours=overlap_hours))
    except PeopleError as exc:
        raise _fail(exc) from exc
    until = old.expires_at.isoformat() if old.expires_at else "-"
    typer.echo(
        f"key_id: {created.key_id}  roles: {','.join(sorted(created.roles))}  replaces: {key_id} "
        f"(valid until {until})",
        err=True,
    )
    typer.echo(created.key)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="the key id shown by `keys list`")) -> None:
    """Revoke a key (running services refuse it within a second)."""
    with _people() as people:
        found = people.store.get_key(key_id)
        if found is None or found.revoked_at is not None:
            typer.echo(f"没有生效中的密钥 {key_id!r}", err=True)
            raise typer.Exit(1)
        people.revoke_key(host_actor(), key_id)
    typer.echo(f"revoked {key_id}")


@oidc_app.command("check")
def oidc_check(
    as_json: bool = typer.Option(False, "--json", help="print {ok, problems: [{code, level, message}]}"),
) -> None:
    """Check the RULESVC_OIDC_* settings against the provider (discovery document, keys): every problem
    with a code and a Chinese message; exit 1 when sign-in cannot work."""
    import json

    from rulesvc.people.errors import OidcNotConfiguredError
    from rulesvc.people.oidc import OidcClient, Problem, check
    from rulesvc.wiring.services import oidc_config

    try:
        config = oidc_config(Settings())
    except OidcNotConfiguredError as exc:
        problems = [Problem("oidc.not_configured", "error", exc.message)]
    else:
        client = OidcClient(config)
        try:
            problems = check(config, client)
        finally:
            client.close()
    ok = not any(p.level == "error" for p in problems)
    if as_json:
        typer.echo(json.dumps({"ok": ok, "problems": [p.to_json() for p in problems]}, ensure_ascii=False))
    else:
        for problem in problems:
            level = "错误" if problem.level == "error" else "提醒"
            typer.echo(f"{level} {problem.code}: {problem.message}")
        typer.echo("单点登录设置可用" if ok else "单点登录设置有错误，登录无法完成")
    raise typer.Exit(0 if ok else 1)

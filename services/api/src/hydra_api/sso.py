"""Single sign-on through an authenticating reverse proxy, trusted only where it stands.

The proxy names the user in ``HYDRA_TRUSTED_USER_HEADER`` (and optionally their groups in
``HYDRA_TRUSTED_GROUPS_HEADER``). Those headers, and ``X-Forwarded-*``, are believed only
from the addresses in ``HYDRA_TRUSTED_PROXIES`` (CIDRs; empty = from nobody): any other
client could type them. A name must be a valid Hydra user name. A user created by SSO has
no password; an existing *local* account (one with a password, like the bootstrap admin) is
never taken over by a header unless ``HYDRA_SSO_LOCAL_ACCOUNTS`` says so. With
``HYDRA_SSO_GROUP_ROLES`` (``group=role,...``) the proxy's groups decide the role, the
highest one wins, on every request; without it, new SSO users are viewers.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from fastapi import Request

from hydra_common.db.schema import Role

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Higher index = more rights; the highest role any group maps to wins.
ROLE_ORDER = (Role.VIEWER, Role.LIAISON, Role.LABELER, Role.EXPERT, Role.DEVELOPER, Role.ADMIN)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def parse_proxies(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; a clear error for a malformed entry."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"HYDRA_TRUSTED_PROXIES: {part!r} is not an address or CIDR") from exc
    return tuple(out)


def from_trusted_proxy(request: Request, spec: str) -> bool:
    """Whether the request's peer is one of the trusted proxies."""
    if not spec or request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(peer in net for net in parse_proxies(spec))


def came_over_https(request: Request, spec: str) -> bool:
    """Whether the browser reached us over TLS: directly, or as a trusted proxy says."""
    if request.url.scheme == "https":
        return True
    if not from_trusted_proxy(request, spec):
        return False
    return request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


@functools.lru_cache(maxsize=16)
def parse_group_roles(spec: str) -> dict[str, Role]:
    """``"dq-admins=admin, cdc-experts=expert"`` -> {group: role}."""
    out: dict[str, Role] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        group, sep, role = part.partition("=")
        if not sep or not group.strip():
            raise ValueError(f"HYDRA_SSO_GROUP_ROLES: {part!r} is not group=role")
        try:
            out[group.strip()] = Role(role.strip())
        except ValueError as exc:
            known = ", ".join(r.value for r in Role)
            raise ValueError(f"HYDRA_SSO_GROUP_ROLES: unknown role {role!r} ({known})") from exc
    return out


def role_for(groups: Iterable[str], mapping: dict[str, Role]) -> Role | None:
    """The highest role the groups map to; None when none of them is mapped."""
    roles = [mapping[g] for g in groups if g in mapping]
    return max(roles, key=ROLE_ORDER.index) if roles else None


def split_groups(header: str) -> list[str]:
    """Groups as proxies send them: separated by commas, semicolons or spaces."""
    return [g for g in re.split(r"[,;\s]+", header[:4096]) if g]

"""Bearer-token authentication: who is calling, for which organisation, in which roles.

Tokens are JWTs carrying `sub`, `org` and `roles` (plus `exp`, `iss`, `aud`). Verification is
pure: the gRPC interceptor (`services.kit.grpc.interceptors`) calls `TokenVerifier.verify` and puts
the `Principal` in a context variable that servicers read with `current_principal()`.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from services.kit.errors import PermissionDenied, Unauthenticated

ORG_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

#: Roles understood across supportflow. A token may carry several.
REQUESTER = "requester"
AGENT = "agent"
TEAM_LEAD = "team_lead"
CHANGE_MANAGER = "change_manager"
PROCESS_ADMIN = "process_admin"
#: An upstream system (portal, e-mail gateway, chat bot) acting for the organisation's requesters.
INTEGRATION = "integration"
#: Another supportflow service.
SERVICE = "service"
KNOWN_ROLES = frozenset({REQUESTER, AGENT, TEAM_LEAD, CHANGE_MANAGER, PROCESS_ADMIN, INTEGRATION, SERVICE})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    org: str
    roles: frozenset[str] = field(default_factory=frozenset)
    #: Teams and queues the caller works in (candidate groups of user tasks: tier1, network, …).
    groups: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    def require_any(self, *roles: str, action: str) -> None:
        if not self.has_any(*roles):
            raise PermissionDenied(f"{action} needs one of the roles {', '.join(sorted(roles))}")

    def require_org(self, org: str) -> None:
        if org != self.org:
            raise PermissionDenied(f"the token is for organisation '{self.org}', not '{org}'")

    @property
    def primary_role(self) -> str:
        for role in (SERVICE, INTEGRATION, PROCESS_ADMIN, CHANGE_MANAGER, TEAM_LEAD, AGENT, REQUESTER):
            if role in self.roles:
                return role
        return next(iter(sorted(self.roles)), "")


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal:
    """The authenticated caller of the RPC being served."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def bind_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)


VERIFIED_TOKENS_KEPT = 4096


class TokenVerifier:
    """Checks a bearer token's signature, expiry, issuer and audience, then its claims."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key_file: Path | None = None,
        issuer: str,
        audience: str,
        leeway_seconds: float = 30.0,
    ) -> None:
        if public_key_file is not None:
            self._key: str = public_key_file.read_text()
            self._algorithms = ["RS256", "ES256"]
        elif secret:
            self._key = secret
            self._algorithms = ["HS256"]
        else:
            raise ValueError("TokenVerifier needs a secret or a public key file")
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        # Upstream systems send the same token with every call: remember what a token proved until
        # it expires, instead of checking its signature again (about a tenth of a SubmitTicket).
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        if (hit := self._verified.get(token)) is not None:
            principal, expires = hit
            if time.time() < expires + self._leeway:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = self._check(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the bearer token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("the bearer token's signature is invalid") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the bearer token is invalid: {exc}") from exc
        return _principal_from_claims(claims), float(claims["exp"])


def _principal_from_claims(claims: dict[str, object]) -> Principal:
    sub, org, roles = claims.get("sub"), claims.get("org"), claims.get("roles")
    groups = claims.get("groups", [])
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("the bearer token has no subject")
    if not isinstance(org, str) or not ORG_ID.match(org):
        raise Unauthenticated("the bearer token has no valid 'org' claim")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("the bearer token's 'roles' claim must be a list of strings")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise Unauthenticated("the bearer token's 'groups' claim must be a list of strings")
    return Principal(
        subject=sub, org=org, roles=frozenset(r for r in roles if r in KNOWN_ROLES), groups=frozenset(groups)
    )


def mint_token(
    *,
    secret: str,
    subject: str,
    org: str,
    roles: Iterable[str],
    groups: Iterable[str] = (),
    issuer: str = "supportflow",
    audience: str = "supportflow",
    ttl_seconds: int = 12 * 3600,
    now: float | None = None,
) -> str:
    """An HS256 token, for development and tests (`supportflow token --help`)."""
    issued = int(now if now is not None else time.time())
    unknown = set(roles) - KNOWN_ROLES
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_ROLES))}")
    claims: dict[str, object] = {
        "sub": subject,
        "org": org,
        "roles": sorted(set(roles)),
        "groups": sorted(set(groups)),
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")

"""Passwords (argon2), signed session cookies, CSRF tokens and the login rate limit.

Sessions are stateless signed cookies (HMAC-SHA256 with ``HYDRA_SECRET_KEY``): any API
replica can check them without a session table. A cookie carries the user id, an expiry, a
random nonce and a fingerprint of the user's password hash, so changing a password ends the
user's sessions everywhere. Logging out deletes the cookie and revokes its nonce in this
process's memory; other replicas honour the cookie until it expires (``session_hours``).
The login rate limit is per process too, which a reverse proxy's limit complements.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SESSION_COOKIE = "hydra_session"
CSRF_COOKIE = "hydra_csrf"
CSRF_HEADER = "X-CSRF-Token"

_hasher = PasswordHasher()
# Verified against when the user does not exist, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches the hash (constant work when there is no hash)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SessionClaims:
    """What a session cookie says: whose it is, until when, and its nonce."""

    user_id: int
    expires: float
    nonce: str
    password_fingerprint: str
    issued: float = 0.0  # tokens from before this field count as issued at the epoch


def password_fingerprint(password_hash: str | None) -> str:
    """A short digest of a password hash; a cookie minted before a password change fails."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


class SessionSigner:
    """Signs and checks session cookies and derives CSRF tokens from them."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"hydra-session:" + secret_key.encode()).digest()
        self._revoked: dict[str, float] = {}

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def issue(self, user_id: int, password_hash: str | None, lifetime_s: float) -> str:
        """A new signed session token for the user."""
        now = time.time()
        claims = {
            "u": user_id,
            "i": round(now, 3),
            "e": int(now + lifetime_s),
            "n": secrets.token_urlsafe(16),
            "p": password_fingerprint(password_hash),
        }
        body = json.dumps(claims, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def verify(self, token: str) -> SessionClaims | None:
        """The claims of a valid, unexpired, unrevoked token; None otherwise."""
        try:
            body_text, mac_text = token.split(".", 1)
            body = _unb64(body_text)
            if not hmac.compare_digest(_unb64(mac_text), self._mac(body)):
                return None
            raw = json.loads(body)
            claims = SessionClaims(
                int(raw["u"]), float(raw["e"]), str(raw["n"]), str(raw["p"]), float(raw.get("i", 0))
            )
        except (ValueError, KeyError, TypeError):
            return None
        if claims.expires < time.time() or claims.nonce in self._revoked:
            return None
        return claims

    def revoke(self, claims: SessionClaims) -> None:
        """Refuse this session from now on in this process (the database tells the others:
        ``domain.sessions.session_user`` reads ``revoked_sessions``)."""
        now = time.time()
        self._revoked = {n: e for n, e in self._revoked.items() if e > now}
        self._revoked[claims.nonce] = claims.expires

    def csrf_token(self, subject: str) -> str:
        """The CSRF token bound to a session nonce or a single-sign-on user name."""
        return _b64(self._mac(b"csrf:" + subject.encode()))[:32]


class LoginRateLimiter:
    """Counts failed logins in a sliding minute, at three levels.

    Per (username, client address): ``max_failures``. Per username from every address
    together: 4 x that, so rotating addresses (or spoofing them) does not reset the count.
    The whole API: 50 x that, a ceiling against a spray over many usernames."""

    PER_USER = 4
    GLOBAL = 50

    def __init__(self, max_failures: int, window_s: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = time.monotonic()
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def _keys(self, username: str, address: str) -> list[tuple[tuple[str, str], int]]:
        name = username.lower()
        return [
            ((name, address), self.max_failures),
            ((name, "*"), self.max_failures * self.PER_USER),
            (("*", "*"), self.max_failures * self.GLOBAL),
        ]

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 when allowed now."""
        wait = 0
        for key, limit in self._keys(username, address):
            q = self._recent(key)
            if len(q) >= limit:
                wait = max(wait, max(1, int(q[0] + self.window_s - time.monotonic()) + 1))
        return wait

    def failed(self, username: str, address: str) -> None:
        """Record a failed attempt."""
        for key, limit in self._keys(username, address):
            self._recent(key)
            q = self._failures.setdefault(key, deque())
            q.append(time.monotonic())
            while len(q) > limit:  # only the newest count: bounded memory per key
                q.popleft()
        if len(self._failures) > 100_000:  # bound the memory an attacker can make us use
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, username: str, address: str) -> None:
        """Forget the failures of a user who logged in."""
        self._failures.pop((username.lower(), address), None)

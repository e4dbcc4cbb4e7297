"""Staff accounts, password hashes and server-side sign-in sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, delete, select

from caserecord import audit
from caserecord.audit import Actor
from caserecord.errors import Conflict, Invalid, NotFound, Unauthenticated
from caserecord.models import ROLES, AuthSession, User
from caserecord.zones import is_zone

_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("lastmile-no-such-user")
# No control characters either: PostgreSQL cannot even compare text holding a NUL.
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """Return the argon2 hash of `password`."""
    return _hasher.hash(password)


def normalize_email(email: str) -> str:
    """Return `email` trimmed and lower-cased, or raise Invalid."""
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise Invalid(f"{email!r} is not an e-mail address")
    return email


def create_user(
    s: Session,
    actor: Actor,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    timezone: str = "UTC",
    supervisor_id: int | None = None,
) -> User:
    """Create a staff account (the caller checks that `actor` may)."""
    email = normalize_email(email)
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not name.strip():
        raise Invalid("name must not be empty")
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"password must have at least {MIN_PASSWORD} characters")
    if not is_zone(timezone):
        raise Invalid(f"unknown time zone {timezone!r}")
    if supervisor_id is not None:
        sup = s.get(User, supervisor_id)
        if sup is None or sup.role not in ("supervisor", "admin"):
            raise Invalid(f"supervisor_id {supervisor_id} is not a supervisor")
    if s.exec(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict(f"a user with e-mail {email} exists")
    user = User(
        email=email,
        name=name.strip(),
        role=role,
        password_hash=hash_password(password),
        timezone=timezone,
        supervisor_id=supervisor_id,
        feed_token=secrets.token_urlsafe(24),
    )
    s.add(user)
    s.flush()
    audit.record(s, actor, "user.create", "user", user.id, email=email, role=role)
    return user


def authenticate(s: Session, email: str, password: str, ip: str | None) -> User:
    """Return the active user with these credentials, or raise Unauthenticated."""
    try:
        email = normalize_email(email)
    except Invalid:
        email = ""
    user = s.exec(select(User).where(User.email == email)).first() if email else None
    stored = user.password_hash if user is not None and user.active else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        audit.record(s, Actor(None, "anonymous", ip), "session.login_failed", "user", None, email=email)
        raise Unauthenticated("wrong e-mail or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(s, Actor(user.id, user.role, ip), "session.login", "user", user.id)
    return user


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a sign-in lasts: idle and absolute limits, checked on the server."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    s: Session, user: User, now: datetime, policy: SessionPolicy, ip: str | None, user_agent: str | None
) -> tuple[str, AuthSession]:
    """Create a sign-in session; return the secret token (kept only as a hash) and the row."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    row = AuthSession(
        id=_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.absolute,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
    )
    s.add(row)
    # Sweep expired sessions of this user while we are here.
    s.exec(delete(AuthSession).where(col(AuthSession.user_id) == user.id, col(AuthSession.expires_at) < now))
    return token, row


def resolve_session(
    s: Session, token: str, now: datetime, policy: SessionPolicy
) -> tuple[User, AuthSession] | None:
    """Return the user and session behind `token` if still valid; touch its idle timer."""
    if not token or len(token) > 200:
        return None
    row = s.get(AuthSession, _digest(token))
    if row is None:
        return None
    if now >= row.expires_at or now - row.last_seen_at >= policy.idle:
        s.delete(row)
        return None
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at > timedelta(seconds=30):
        row.last_seen_at = now  # throttled so that reads stay cheap
    return user, row


def close_session(s: Session, token: str) -> None:
    """Forget the session behind `token`."""
    row = s.get(AuthSession, _digest(token))
    if row is not None:
        s.delete(row)


def get_user(s: Session, user_id: int) -> User:
    """Return user `user_id` or raise NotFound."""
    user = s.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user

"""Password hashing (Argon2id through pwdlib) and the password policy.

Hashes are PHC strings (``$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>``) with a
random salt each. :func:`needs_rehash` tells when a stored hash was made with other
parameters than the current ones, so that a successful login can upgrade it.

:func:`verify_dummy` spends the time of one verification on a fixed hash: the store
calls it when a username does not exist (or has no password, or is disabled), so
that the response time does not reveal which usernames exist.

Plain passwords are never logged or stored; error messages never contain them.

Example:
    >>> stored = hash_password("correct horse battery")
    >>> verify_password("correct horse battery", stored)
    True
"""

from __future__ import annotations

import contextlib
import threading

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from posekit.store.errors import StoreError

__all__ = [
    "DEFAULT_COST",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "check_password_policy",
    "configure_hashing",
    "hash_password",
    "needs_rehash",
    "verify_dummy",
    "verify_password",
]

#: The shortest password accepted.
MIN_PASSWORD_LENGTH = 8
#: The longest password accepted (hashing a megabyte per login attempt is a DoS vector).
MAX_PASSWORD_LENGTH = 1024
#: Argon2id parameters: 64 MiB, 3 passes, 4 lanes (pwdlib's and RFC 9106's choice).
DEFAULT_COST: dict[str, int] = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}

_lock = threading.Lock()
_hasher = PasswordHash((Argon2Hasher(**DEFAULT_COST),))
_dummy_hash: str | None = None


def configure_hashing(
    *,
    time_cost: int = DEFAULT_COST["time_cost"],
    memory_cost: int = DEFAULT_COST["memory_cost"],
    parallelism: int = DEFAULT_COST["parallelism"],
) -> None:
    """Set the Argon2id parameters of new hashes (default: :data:`DEFAULT_COST`).

    Existing hashes still verify; :func:`needs_rehash` reports them as outdated, and
    the store rehashes them at the next successful login. Test suites may lower the
    cost (e.g. ``time_cost=1, memory_cost=1024, parallelism=1``) to stay fast.
    """
    global _hasher, _dummy_hash
    with _lock:
        _hasher = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism),)
        )
        _dummy_hash = None


def check_password_policy(password: object) -> str:
    """The password if it is acceptable.

    Raises:
        StoreError: Not a string, shorter than :data:`MIN_PASSWORD_LENGTH` or longer
            than :data:`MAX_PASSWORD_LENGTH` characters (the message names
            ``password``, never its value).
    """
    if not isinstance(password, str):
        raise StoreError(f"password must be a string, got {type(password).__name__}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StoreError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters long (got {len(password)})"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StoreError(f"password must be at most {MAX_PASSWORD_LENGTH} characters long")
    return password


def hash_password(password: str) -> str:
    """The Argon2id PHC string of a password that passes :func:`check_password_policy`."""
    return _hasher.hash(check_password_policy(password))


def verify_password(password: str, stored_hash: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False for a malformed hash)."""
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
        verify_dummy()
        return False
    try:
        return bool(_hasher.verify(password, stored_hash))
    except Exception:  # an unknown or corrupt hash never logs anybody in
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a stored hash was made with other parameters (or algorithm) than now."""
    try:
        return _hasher.current_hasher.check_needs_rehash(stored_hash)
    except Exception:
        return True


def verify_dummy() -> None:
    """Spend the time of one verification (for an unknown user); always fails."""
    global _dummy_hash
    if _dummy_hash is None:
        with _lock:
            if _dummy_hash is None:
                _dummy_hash = _hasher.hash("posekit dummy password, never matches")
    with contextlib.suppress(Exception):
        _hasher.verify("not the dummy password", _dummy_hash)

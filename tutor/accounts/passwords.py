"""Temporary passwords for accounts that a teacher creates."""

from __future__ import annotations

import secrets

# Lower case without look-alikes (0/o, 1/l/i): the password is read off a printed list.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS, GROUP_LENGTH = 3, 4


def temporary_password() -> str:
    """A random password such as ``k7mq-x2pa-9wte`` (about 59 bits)."""
    return "-".join(
        "".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS)
    )


# A temporary password is random (above), so a fast hash of it is as hard to reverse as a slow
# one; the full default count would make a class of thirty a long wait. It is rehashed at the
# default count when its owner logs in (Django upgrades it), and replaced soon after.
TEMPORARY_ITERATIONS = 20_000


def hash_temporary_password(password: str) -> str:
    """``password`` hashed for storing in ``User.password``: PBKDF2 with fewer iterations when
    PBKDF2 is the default hasher, else the default hasher as it is."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher, make_password

    hasher = get_hasher("default")
    if isinstance(hasher, PBKDF2PasswordHasher):
        iterations = min(TEMPORARY_ITERATIONS, hasher.iterations)
        return hasher.encode(password, hasher.salt(), iterations=iterations)
    return make_password(password)

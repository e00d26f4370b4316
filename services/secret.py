"""The embedded mode's auth secret: generated once, kept in `<data_dir>/auth-secret`.

`taktline run` needs an HS256 secret to mint the admin token it prints, but a newcomer
should not have to invent one. Production (`taktline serve`) never falls back to this
file: there the secret or a JWKS URL must be configured explicitly.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILENAME = "auth-secret"
LENGTH = 48


class SecretFileError(RuntimeError):
    pass


def secret_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILENAME


def read_secret(data_dir: Path) -> str | None:
    """The stored secret, or None when there is none yet."""
    path = secret_path(data_dir)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if len(value) < 32:
        raise SecretFileError(f"{path} holds fewer than 32 characters; delete it to generate a new one")
    return value


def load_or_create_secret(data_dir: Path) -> str:
    """Reuse the stored secret, or write a new random one readable by the owner only."""
    existing = read_secret(data_dir)
    if existing is not None:
        return existing
    path = secret_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(36)  # 36 random bytes -> 48 URL-safe characters
    try:
        # O_EXCL: two `taktline run` starting together must not overwrite each other's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `taktline run` created it a moment ago
        raced = read_secret(data_dir)
        if raced is None:
            raise SecretFileError(f"{path} vanished while being created") from None
        return raced
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value

"""The server's signing key: from settings, or generated once and kept in the data directory.

The key signs page tokens and stream tokens (HMAC-SHA256). It is read here,
in the shell, and handed to the use cases as bytes; it is never logged. The
embedded profile persists a generated key in ``<data_dir>/secret_key`` (mode
0600) so tokens survive a restart; processes on several hosts must share one
``LASTMILE_SECRET_KEY`` instead.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from lastmile.settings import Settings

FILE_NAME = "secret_key"
_MIN_LENGTH = 32  # characters of a configured key: 128+ bits as hex or base64


def signing_key(settings: Settings) -> bytes:
    """32 bytes derived from ``settings.secret_key``, or from the persisted generated key."""
    if settings.secret_key is not None:
        if len(settings.secret_key) < _MIN_LENGTH:
            raise ValueError(f"LASTMILE_SECRET_KEY must be at least {_MIN_LENGTH} characters "
                             f"(got {len(settings.secret_key)}); the value is not shown")
        text = settings.secret_key
    else:
        text = _persisted(settings.data_dir / FILE_NAME)
    return hashlib.sha256(b"lastmile-signing-key." + text.encode()).digest()


def _persisted(path: Path) -> str:
    """The key in ``path``, created on first use, readable by its owner only.

    The new key is written to a private temporary file and hard-linked into
    place: the link either appears complete or fails because another process
    won, whose key is then read. No reader ever sees a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        finally:
            tmp.unlink()
    text = path.read_text(encoding="ascii").strip()
    if len(text) < _MIN_LENGTH:
        raise ValueError(f"{path} holds a key too short to use; delete it to generate a new one")
    return text

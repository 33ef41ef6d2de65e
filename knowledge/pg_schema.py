"""The PostgreSQL store's schema: numbered migration steps, the version row that records them, and the checks.

A build (`index build --store URL`) applies the steps a database lacks; a reader only checks, and an older or
newer schema is a one-line error saying what to run. Vector columns get their dimension from the first build
(the model decides it), so the HNSW index is made then, not by a migration.
"""

from __future__ import annotations

from knowledge.index_errors import IndexError_

# Each step takes the schema from version i to i + 1; append new steps, never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE library (
        id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        version bigint NOT NULL DEFAULT 0,
        dimension integer,
        manifest jsonb NOT NULL DEFAULT '{}'::jsonb,
        built_at timestamptz
    );
    INSERT INTO library (id) VALUES (1);
    CREATE TABLE documents (
        doc_id text PRIMARY KEY,
        title text NOT NULL,
        url text NOT NULL DEFAULT '',
        source_path text NOT NULL,
        paths jsonb NOT NULL,
        reviewed text NOT NULL DEFAULT '',
        summary text NOT NULL DEFAULT '',
        kind text NOT NULL DEFAULT '',
        meta jsonb NOT NULL DEFAULT '{}'::jsonb,
        model text NOT NULL,
        chunking jsonb NOT NULL
    );
    CREATE SEQUENCE chunk_ids;
    CREATE TABLE chunks (
        chunk_id bigint PRIMARY KEY,
        doc_id text NOT NULL REFERENCES documents ON DELETE CASCADE,
        position integer NOT NULL,
        heading_path jsonb NOT NULL,
        text text NOT NULL,
        sentences jsonb NOT NULL,
        page_start integer,
        page_end integer,
        page_breaks jsonb NOT NULL,
        lexical_text text NOT NULL,
        embedding vector NOT NULL,
        lexical sparsevec
    );
    CREATE INDEX chunks_doc ON chunks (doc_id, position);
    CREATE TABLE sentences (
        chunk_id bigint NOT NULL REFERENCES chunks ON DELETE CASCADE,
        position integer NOT NULL,
        embedding vector NOT NULL,
        PRIMARY KEY (chunk_id, position)
    );
    CREATE TABLE vocabulary (
        token text PRIMARY KEY,
        dim integer NOT NULL UNIQUE,
        df integer NOT NULL,
        idf double precision NOT NULL
    );
    """,
    # 2: the question keys' vectors, one row per key of a document's front-matter `questions:`; typed with the
    # library's dimension when it has one already (set_dimension re-types it on a model change).
    """
    CREATE TABLE question_keys (
        doc_id text NOT NULL REFERENCES documents ON DELETE CASCADE,
        position integer NOT NULL,
        heading text NOT NULL,
        text text NOT NULL,
        embedding vector NOT NULL,
        PRIMARY KEY (doc_id, position)
    );
    DO $$
    DECLARE dim integer := (SELECT dimension FROM library);
    BEGIN
        IF dim IS NOT NULL THEN
            EXECUTE format('ALTER TABLE question_keys ALTER COLUMN embedding TYPE vector(%s)', dim);
        END IF;
    END $$;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Chunks' BM25 vectors all have this many dimensions, one per vocabulary row; a token keeps its dimension across
# builds, so a query made just before a build still scores the right words.
SPARSE_DIMENSIONS = 100_000_000


class StoreError(IndexError_):
    """A PostgreSQL store problem a person can fix: the message says what to run or start."""


class StoreUnavailableError(StoreError):
    """The server cannot be reached, or refuses us."""


class VectorExtensionMissingError(StoreError):
    """The database has no pgvector extension and we may not create it."""


class SchemaVersionError(StoreError):
    """The database holds another schema version than this patient-qa reads."""


class EmptyStoreError(StoreError):
    """The database holds no library yet."""


def create_extension(conn, location: str) -> None:
    """CREATE EXTENSION vector, or a one-line error saying how to get it (package, or a superuser's command)."""
    import psycopg

    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if not available:
        raise VectorExtensionMissingError(
            f"the PostgreSQL at {location} has no pgvector extension; install it on the server (for example "
            "'apt-get install postgresql-NN-pgvector'), then run 'CREATE EXTENSION vector;' in that database")
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        raise VectorExtensionMissingError(
            f"the database at {location} has pgvector available but not enabled, and this user may not enable it; "
            "ask its owner to run 'CREATE EXTENSION vector;' in that database") from None


def has_vector_extension(conn) -> bool:
    """Whether `CREATE EXTENSION vector` has run in this database."""
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None


def schema_version(conn) -> int | None:
    """The version row's value, or None when the database holds no patient-qa schema."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
    if not exists:
        return None
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn, location: str) -> int:
    """Apply the missing steps in one transaction (the caller commits); returns how many ran."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('patient-qa schema'))")  # two first builds at once
    current = schema_version(conn)
    if current is None:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (0)")
        current = 0
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the store at {location} has schema version {current}, newer than the {SCHEMA_VERSION} this "
            "patient-qa knows; upgrade patient-qa")
    for step in MIGRATIONS[current:]:
        conn.execute(step)
    conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
    return SCHEMA_VERSION - current


def check_schema(conn, location: str) -> None:
    """A reader's check: the schema is the one this code reads, else an error that says what to run."""
    current = schema_version(conn)
    if current is None:
        raise EmptyStoreError(f"no library in the store at {location}; "
                              f"run 'patient-qa index build --store {location}' to create it")
    if current < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the store at {location} has schema version {current}, this patient-qa reads {SCHEMA_VERSION}; "
            f"run 'patient-qa index build --store {location}' to migrate it")
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the store at {location} has schema version {current}, newer than the {SCHEMA_VERSION} this "
            "patient-qa reads; upgrade patient-qa")


def set_dimension(conn, dimension: int, hnsw_m: int, hnsw_ef_construction: int) -> None:
    """Give the vector columns the model's dimension and (re)make the HNSW index; the chunks must be gone first
    when the dimension changes (a new model re-embeds every document)."""
    row = conn.execute("SELECT dimension FROM library").fetchone()
    if row and row[0] == dimension:
        return
    conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw")
    conn.execute(f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({int(dimension)})")
    conn.execute(f"ALTER TABLE sentences ALTER COLUMN embedding TYPE vector({int(dimension)})")
    conn.execute(f"ALTER TABLE question_keys ALTER COLUMN embedding TYPE vector({int(dimension)})")
    # Inner product on unit vectors is cosine, and cheaper to compute than the cosine operator.
    conn.execute(f"CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_ip_ops) "
                 f"WITH (m = {int(hnsw_m)}, ef_construction = {int(hnsw_ef_construction)})")
    conn.execute("UPDATE library SET dimension = %s", (dimension,))

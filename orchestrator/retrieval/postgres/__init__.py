"""The PostgreSQL + pgvector index backend (extra ``postgres``).

Indexes live by name in one database: :mod:`.store` writes them (one transaction per change),
:mod:`.search` answers the shared search pipeline in SQL, :mod:`.migrations` versions the
schema, :mod:`.connection` connects, retries what is safe and names the server in errors, and
:mod:`.server` runs a local PostgreSQL with pgvector for trying it out (``orchestrator db``).
Use it through an ``IndexSpec.of(NAME, DSN)`` given to ``build_index``, ``open_retriever``
and the other public functions (``stores.INDEX_BACKENDS['postgres']`` opens it).
"""

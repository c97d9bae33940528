"""The local store: SQLModel tables, the engine, and Alembic migrations."""

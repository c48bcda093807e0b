"""Persistence: the metadata store (engine, write transactions), its SQLAlchemy
models and the Alembic migrations that alone create and change the schema."""

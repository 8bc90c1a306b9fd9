"""Database schema, engine helpers and migrations."""

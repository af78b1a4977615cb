"""Database backends of our own (see ``tutor.db.sqlite3``)."""

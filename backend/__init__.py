"""Tablestack: SQLModel tables drive a REST CRUD API, an admin UI, migrations and seed data."""

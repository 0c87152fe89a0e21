"""Seed data: load declarative sets by natural key, dump the database to a set, fake volume."""

"""The one write path: every create, update and delete of a registered table, from the API,
the admin, seed loads and the CLI, goes through `Writer` (see `service.py`)."""

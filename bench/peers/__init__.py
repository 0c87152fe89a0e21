"""The peer apps: the same products endpoints, each written the way its framework's users would."""

"""Users, password hashing and roles shared by the API and the admin."""

"""Who writes: a signed-in user (through the API or the admin) or a tool."""

from dataclasses import dataclass
from typing import Literal

Surface = Literal["api", "admin", "seed", "cli", "fake"]


@dataclass(frozen=True)
class Actor:
    """The author of a change, as the history records it.

    `label` is the user's email or the tool (`seed:<set>`, `cli`, `fake`). A user known only
    by id (the API's bearer token carries no email) has `label` None: the history then reads
    the email from the users table in the same statement.
    """

    label: str | None
    user_id: int | None = None
    surface: Surface = "api"

    @classmethod
    def user(cls, user_id: int, email: str | None, surface: Surface) -> "Actor":
        return cls(email, user_id, surface)

    @classmethod
    def seed(cls, set_name: str) -> "Actor":
        return cls(f"seed:{set_name}", None, "seed")


CLI = Actor("cli", None, "cli")
FAKE = Actor("fake", None, "fake")

"""A hook written once for the fixture app's currencies, which every surface must run."""

from backend.writes.errors import refuse
from backend.writes.hooks import Change, Hooks

REFUSED_NAME = "Refused by hook"


class CurrencyHooks(Hooks):
    """Refuses a currency named REFUSED_NAME, on create and on update, from any surface."""

    async def before_create(self, change: Change) -> None:
        self._check(change)

    async def before_update(self, change: Change) -> None:
        self._check(change)

    @staticmethod
    def _check(change: Change) -> None:
        if change.values.get("name") == REFUSED_NAME:
            raise refuse("name", f"{REFUSED_NAME!r} is not a currency name")

"""The fixture app: the type and shape matrix, registered as a user registers tables."""

from backend.registry import registry
from tests.fixture_app.hooks import CurrencyHooks
from tests.fixture_app.models import Bin, Currency, Node, Specimen, Warehouse

registry.register(Node, tree="parent_id")
registry.register(Currency, hooks=CurrencyHooks())
registry.register(Warehouse)
registry.register(Bin)
registry.register(Specimen)

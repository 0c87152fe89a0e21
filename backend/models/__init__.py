"""Every table of the product; importing this package defines them all on one metadata."""

from backend import db  # noqa: F401  (sets the naming convention before any table is defined)
from backend.models.catalog import Category, Product, ProductTag, Tag
from backend.models.history import HistoryEntry
from backend.models.sales import Customer, Order, OrderItem, OrderStatus
from backend.models.users import Role, User

__all__ = [
    "Category",
    "Customer",
    "HistoryEntry",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Product",
    "ProductTag",
    "Role",
    "Tag",
    "User",
]

"""(d) FastAPI + FastCRUD's generated router (`crud_router`) over async SQLAlchemy on asyncpg.

Set up as FastCRUD's documentation shows: a declarative model, pydantic create/update/read
schemas, an `async_sessionmaker` dependency, one `crud_router(...)` call. The generated list
endpoint keeps FastCRUD's own paginated shape, `{"data": [...], "total_count": N, "has_more",
"page", "items_per_page"}`, with `page`, `itemsPerPage`, `sort` and the `category_id` filter
as query parameters: the same page and total as the other targets, and what a FastCRUD user
gets.

Run: uvicorn bench.peers.fastcrud_app:app --no-access-log
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal

from fastapi import FastAPI
from fastcrud import FastCRUD, FilterConfig, crud_router
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, ForeignKey, Numeric, String, Text, func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.peers.common import ProductCreate, ProductUpdate, database_url


class Base(DeclarativeBase):
    pass


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    description: str | None
    price: Decimal
    stock: int
    is_active: bool
    category_id: int
    created_at: datetime
    updated_at: datetime


POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "10"))
engine = create_async_engine(database_url("asyncpg"), pool_size=POOL_SIZE, max_overflow=10)
session_factory = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(title="FastCRUD peer", lifespan=lifespan)
app.include_router(
    crud_router(
        session=get_session,
        model=Product,
        crud=FastCRUD(Product),
        create_schema=ProductCreate,
        update_schema=ProductUpdate,
        select_schema=ProductRead,
        path="/api/products",
        tags=["products"],
        filter_config=FilterConfig(category_id=None),
        included_methods=["create", "read", "read_multi", "update", "delete"],
    )
)

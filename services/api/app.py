"""The read-only look-up API: orders, SKU queues and the demand report, behind a bearer token."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ops import queries
from shared.db.engine import make_engine, make_session_factory
from shared.settings import ConfigurationError, Settings


class OrderLineView(BaseModel):
    line_id: str
    sku: str
    quantity: int
    allocated: int
    backordered: int
    rejected: int
    status: str | None
    queue_position: int | None
    eta: datetime | None
    reason: str | None


class OrderView(BaseModel):
    order_id: str
    status: str | None
    version: int
    placed_at: datetime
    lines: list[OrderLineView]


class QueuedLineView(BaseModel):
    position: int
    order_id: str
    line_id: str
    quantity: int
    allocated: int
    waiting: int
    placed_at: datetime | None


class SkuQueueView(BaseModel):
    sku: str
    available: int
    received_total: int
    backorders: str
    max_backorder_quantity: int | None
    queue: list[QueuedLineView]


class DemandRow(BaseModel):
    sku: str
    waiting_lines: int
    waiting_units: int
    oldest_since: datetime
    scheduled_supply: int
    next_expected: datetime | None
    shortfall: int


bearer = HTTPBearer(auto_error=False)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as db:
        yield db


Session = Annotated[AsyncSession, Depends(_session)]


def create_api(settings: Settings) -> FastAPI:
    if settings.api_token is None:
        raise ConfigurationError("the look-up API needs BACKORDER_API_TOKEN")
    token = settings.api_token.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.sessions = make_session_factory(engine)
        yield
        await engine.dispose()

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials, token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    api = FastAPI(
        title="Backorder look-up API",
        version="1",
        description="Read-only views of orders, SKU queues and backorder demand.",
        lifespan=lifespan,
        dependencies=[Depends(authorised)],
    )

    @api.get("/orders/{order_id}", response_model=OrderView)
    async def get_order(order_id: str, db: Session) -> OrderView:
        state = await queries.order_state(db, order_id=order_id)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id}")
        return OrderView.model_validate(state)

    @api.get("/skus/{sku}/queue", response_model=SkuQueueView)
    async def get_sku_queue(sku: str, db: Session) -> SkuQueueView:
        book = await queries.sku_queue(db, sku=sku)
        if book is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no SKU {sku}")
        return SkuQueueView.model_validate(
            {**book, "backorders": book["backorders"] or settings.default_backorders}
        )

    @api.get("/reports/demand", response_model=list[DemandRow])
    async def get_demand(
        db: Session, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[DemandRow]:
        return [
            DemandRow.model_validate(row) for row in await queries.demand_report(db, limit=limit)
        ]

    return api

"""The read-only look-up API: orders, SKU queues and the demand report, behind a bearer token."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ops import queries
from services.ops.views import DemandRow, OrderView, SkuQueueView
from shared.db.engine import make_engine, make_session_factory
from shared.settings import ConfigurationError, Settings

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
        app.state.engine = engine
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
    )
    # Probes carry no token, as a kubelet's or Docker's do not; they tell nothing about orders.
    api.include_router(health_routes())
    lookups = APIRouter(dependencies=[Depends(authorised)])

    @lookups.get("/orders/{order_id}", response_model=OrderView)
    async def get_order(order_id: str, db: Session) -> OrderView:
        state = await queries.order_state(db, order_id=order_id)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id}")
        return state.public()

    @lookups.get("/skus/{sku}/queue", response_model=SkuQueueView)
    async def get_sku_queue(sku: str, db: Session) -> SkuQueueView:
        book = await queries.sku_queue(db, sku=sku)
        if book is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no SKU {sku}")
        return book.in_force(default_backorders=settings.default_backorders)

    @lookups.get("/reports/demand", response_model=list[DemandRow])
    async def get_demand(
        db: Session, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[DemandRow]:
        return await queries.demand_report(db, limit=limit)

    api.include_router(lookups)
    return api


def health_routes() -> APIRouter:
    router = APIRouter(prefix="/health", include_in_schema=False)

    @router.get("/live")
    async def live() -> Response:
        return Response("ok\n", media_type="text/plain")

    @router.get("/ready")
    async def ready(request: Request) -> Response:
        """Ready when the database answers within two seconds: every look-up reads it."""
        try:
            async with asyncio.timeout(2.0), request.app.state.engine.connect() as connection:
                await connection.execute(text("select 1"))
        except Exception as error:
            problem = f"database unreachable: {type(error).__name__}\n"
            return Response(problem, status.HTTP_503_SERVICE_UNAVAILABLE, media_type="text/plain")
        return Response("ready\n", media_type="text/plain")

    return router

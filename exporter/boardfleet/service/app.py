"""HTTP API of the fleet service (OpenAPI docs at ``/docs``, spec at ``/openapi.json``).

* ``GET /probe?target=<board>``: the board's metrics, read agentlessly (blackbox style)
* ``GET /sd?mode=agentless|agent``: Prometheus HTTP service discovery
* ``GET /boards``, ``GET /boards/{name}``; ``POST /boards``, ``DELETE /boards/{name}``
  (bearer token required)
* ``GET /healthz``, ``GET /metrics``
* soak runs and the alert history: see :mod:`boardfleet.service.soak`
"""

import asyncio
import hmac
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, AsyncIterator, Dict, List, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field

from boardfleet import __version__
from boardfleet.inventory import Board, Inventory, InventoryError
from boardfleet.probe import Prober, render
from boardfleet.replicas import Replica, owner
from boardfleet.service import soak
from boardfleet_agent.config import DEFAULT_PORT

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


class BoardIn(BaseModel):
    """A board as the API accepts it (same fields as an inventory entry)."""

    name: str = Field(min_length=1, max_length=63, examples=["hi3516-rack1-03"])
    host: str = Field(min_length=1, max_length=253, examples=["10.20.0.13"])
    port: int = Field(22, ge=1, le=65535)
    user: str = Field("root", min_length=1, max_length=64)
    platform: Literal["auto", "hisi", "horizon", "snapdragon", "generic"] = "auto"
    mode: Literal["agent", "agentless"] = "agent"
    transport: Literal["ssh", "telnet"] = "ssh"
    agent_port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    labels: Dict[str, str] = Field(default_factory=dict)
    sysroot: str = Field("/", max_length=255)


class TargetGroup(BaseModel):
    targets: List[str]
    labels: Dict[str, str]


class Health(BaseModel):
    status: str
    version: str
    boards: int


class ServiceState:
    """Inventory (saved on every change), prober and the probe executor."""

    replica = Replica()  # agentless probe sharding (boardfleet.replicas; serve --replica)

    def __init__(self, inventory: Inventory, prober: Prober, token: str | None,
                 timeout: float = 10.0, concurrency: int = 64) -> None:
        self.inventory = inventory
        self.prober = prober
        self.token = token
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(max_workers=concurrency,
                                           thread_name_prefix="probe")
        self.lock = threading.Lock()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.prober.pool.close()


def create_app(state: ServiceState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="boardfleet fleet service", version=__version__, lifespan=lifespan,
                  description=__doc__)
    bearer = HTTPBearer(auto_error=False)

    def writer(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if state.token is None:
            raise HTTPException(403, "writes are disabled: the service has no --token-file")
        if creds is None or not hmac.compare_digest(
                creds.credentials.encode("utf-8", "replace"), state.token.encode()):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        return Health(status="ok", version=__version__, boards=len(state.inventory))

    @app.get("/boards", response_model=List[BoardIn], tags=["inventory"])
    def list_boards() -> List[Dict[str, Any]]:
        return [asdict(b) for b in state.inventory]

    @app.get("/boards/{name}", response_model=BoardIn, tags=["inventory"],
             responses={404: {"description": "no such board"}})
    def get_board(name: str) -> Dict[str, Any]:
        try:
            return asdict(state.inventory.get(name))
        except InventoryError as e:
            raise HTTPException(404, str(e)) from None

    @app.post("/boards", response_model=BoardIn, status_code=201, tags=["inventory"],
              dependencies=[Depends(writer)],
              responses={401: {"description": "bad token"}, 403: {"description": "writes off"},
                         409: {"description": "board exists"},
                         422: {"description": "invalid board"}})
    def add_board(body: BoardIn) -> Dict[str, Any]:
        board = Board(**body.model_dump())
        with state.lock:
            if board.name in state.inventory.boards:
                raise HTTPException(409, "board %r is already in the inventory" % board.name)
            try:
                state.inventory.add(board)
            except InventoryError as e:
                raise HTTPException(422, str(e)) from None
            _save(state)
        return asdict(board)

    @app.delete("/boards/{name}", status_code=204, tags=["inventory"],
                dependencies=[Depends(writer)],
                responses={401: {"description": "bad token"}, 403: {"description": "writes off"},
                           404: {"description": "no such board"}})
    def remove_board(name: str) -> Response:
        with state.lock:
            try:
                state.inventory.remove(name)
            except InventoryError as e:
                raise HTTPException(404, str(e)) from None
            _save(state)
        state.prober.forget(name)
        return Response(status_code=204)

    @app.get("/sd", response_model=List[TargetGroup], tags=["prometheus"])
    def http_sd(mode: Literal["agent", "agentless"] = "agentless") -> List[Dict[str, Any]]:
        """Prometheus HTTP SD: agentless targets are board names for ``/probe``, agent
        targets are ``host:agent_port``."""
        groups = state.inventory.file_sd(mode)
        return state.replica.select(groups) if mode == "agentless" else groups

    @app.get("/probe", tags=["prometheus"], response_class=Response,
             responses={200: {"content": {EXPOSITION: {}}, "description": "metrics"},
                        404: {"description": "no such board"}})
    async def probe(
        target: Annotated[str, Query(min_length=1, max_length=63, description="board name")],
        scrape_timeout: Annotated[float | None, Header(
            alias="X-Prometheus-Scrape-Timeout-Seconds", include_in_schema=False)] = None,
    ) -> Response:
        """Read ``target`` over SSH/telnet now; ``board_probe_success`` says if it worked."""
        try:
            board = state.inventory.get(target)
        except InventoryError as e:
            raise HTTPException(404, str(e)) from None
        if not state.replica.owns(target):
            raise HTTPException(421, "board %s is probed by replica %d of %d, not %d" % (
                target, owner(target, state.replica.count), state.replica.count,
                state.replica.index))
        timeout = state.timeout
        if scrape_timeout is not None and scrape_timeout > 0:
            timeout = min(timeout, max(0.1, scrape_timeout - 0.5))
        started = time.monotonic()
        deadline = started + timeout
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(state.executor, state.prober.probe, board, deadline)
        try:
            body = await asyncio.wait_for(job, timeout + 0.5)
        except TimeoutError:
            body = render([], False, time.monotonic() - started)
        return Response(body, media_type=EXPOSITION)

    @app.get("/metrics", tags=["service"], response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.include_router(soak.router(state, writer))
    return app


def _save(state: ServiceState) -> None:
    if state.inventory.path:
        try:
            state.inventory.save()
        except (OSError, InventoryError) as e:
            raise HTTPException(500, "cannot save the inventory: %s" % e) from None

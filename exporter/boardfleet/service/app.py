"""HTTP API of the fleet service (OpenAPI docs at ``/docs``, spec at ``/openapi.json``).

* ``GET /probe?target=<board>``: the board's metrics, read agentlessly (blackbox style);
  one probe per board at a time (later requests share it), bearer token if configured
* ``GET /metrics``: the service's own metrics (probes, failures, durations by board)
* ``GET /sd?mode=agentless|agent``: Prometheus HTTP service discovery
* ``GET /boards``, ``GET /boards/{name}``; ``POST /boards``, ``DELETE /boards/{name}``
  (bearer token required)
* ``GET /healthz``
* soak runs and the alert history: see :mod:`boardfleet.service.soak`
* ``GET /runbook``: prometheus/RUNBOOK.md as a page (every alert's runbook link)
"""

import asyncio
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Dict, List, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import REGISTRY, generate_latest
from pydantic import BaseModel

from boardfleet import __version__
from boardfleet import inventory as inventory_file
from boardfleet.inventory import (
    Board,
    Inventory,
    InventoryConflict,
    InventoryError,
)
from boardfleet.probe import Prober, render
from boardfleet.replicas import Replica, owner
from boardfleet.service import metrics as service_metrics
from boardfleet.service import runbook, soak

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger("boardfleet.service")


class TargetGroup(BaseModel):
    targets: List[str]
    labels: Dict[str, str]


class Health(BaseModel):
    status: str
    version: str
    boards: int


class ServiceState:
    """Inventory (re-read when its file changes, saved on every change), prober and the
    probe executor."""

    replica = Replica()  # agentless probe sharding (boardfleet.replicas; serve --replica)

    def __init__(self, inventory: Inventory, prober: Prober, token: str | None,
                 timeout: float = 10.0, concurrency: int = 64,
                 probe_token: str | None = None, runbook: Path | None = None) -> None:
        self._inventory = inventory
        self.runbook = runbook
        self.probe_token = probe_token
        # Board name -> the probe of it now running (single flight; event loop only).
        self.inflight: Dict[str, asyncio.Future] = {}
        self._stamp = _stamp(inventory.path)
        self.prober = prober
        self.token = token
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(max_workers=concurrency,
                                           thread_name_prefix="probe")
        self.lock = threading.RLock()

    @property
    def inventory(self) -> Inventory:
        """The inventory as the file has it now: edits by the CLI or by hand are seen
        at the next request; a file that became invalid keeps the last good one."""
        path = self._inventory.path
        stamp = _stamp(path)
        if path and stamp != self._stamp:
            with self.lock:
                try:
                    self._inventory = inventory_file.load(path)
                    log.info("inventory %s changed: %d boards", path, len(self._inventory))
                except InventoryError as e:
                    log.warning("%s; still serving the last good inventory", e)
                self._stamp = stamp
        return self._inventory

    @contextmanager
    def editing(self) -> Iterator[Inventory]:
        """Change the inventory under the file lock shared with the CLI, then save."""
        path = self._inventory.path
        with self.lock:
            if not path:
                yield self._inventory
                return
            try:
                with inventory_file.editing(path) as inv:
                    yield inv
            except (OSError, InventoryError) as e:
                raise HTTPException(500, "cannot save the inventory: %s" % e) from None
            self._inventory, self._stamp = inv, _stamp(path)

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
        _check(creds, state.token)

    def prober(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
               ) -> None:
        if state.probe_token is not None:
            _check(creds, state.probe_token)

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {EXPOSITION: {}}, "description": "metrics"}})
    def metrics() -> Response:
        """The service's own metrics (prometheus_client's default registry)."""
        return Response(generate_latest(REGISTRY), media_type=EXPOSITION)

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        return Health(status="ok", version=__version__, boards=len(state.inventory))

    @app.get("/boards", response_model=List[Board], tags=["inventory"])
    def list_boards() -> List[Board]:
        return list(state.inventory)

    @app.get("/boards/{name}", response_model=Board, tags=["inventory"],
             responses={404: {"description": "no such board"}})
    def get_board(name: str) -> Board:
        try:
            return state.inventory.get(name)
        except InventoryError as e:
            raise HTTPException(404, str(e)) from None

    @app.post("/boards", response_model=Board, status_code=201, tags=["inventory"],
              dependencies=[Depends(writer)],
              responses={401: {"description": "bad token"}, 403: {"description": "writes off"},
                         409: {"description": "name or agent address taken"},
                         422: {"description": "invalid board"}})
    def add_board(body: Board) -> Board:
        board = body
        with state.editing() as inv:
            try:
                inv.add(board)
            except InventoryConflict as e:
                raise HTTPException(409, str(e)) from None
            except InventoryError as e:
                raise HTTPException(422, str(e)) from None
        return board

    @app.delete("/boards/{name}", status_code=204, tags=["inventory"],
                dependencies=[Depends(writer)],
                responses={401: {"description": "bad token"}, 403: {"description": "writes off"},
                           404: {"description": "no such board"}})
    def remove_board(name: str) -> Response:
        with state.editing() as inv:
            try:
                inv.remove(name)
            except InventoryError as e:
                raise HTTPException(404, str(e)) from None
        state.prober.forget(name)
        service_metrics.forget(name)
        return Response(status_code=204)

    @app.get("/sd", response_model=List[TargetGroup], tags=["prometheus"])
    def http_sd(mode: Literal["agent", "agentless"] = "agentless") -> List[Dict[str, Any]]:
        """Prometheus HTTP SD: agentless targets are board names for ``/probe``, agent
        targets are ``host:agent_port``."""
        groups = state.inventory.file_sd(mode)
        return state.replica.select(groups) if mode == "agentless" else groups

    @app.get("/probe", tags=["prometheus"], response_class=Response,
             dependencies=[Depends(prober)],
             responses={200: {"content": {EXPOSITION: {}}, "description": "metrics"},
                        401: {"description": "bad token (with --probe-token-file)"},
                        404: {"description": "no such board"}})
    async def probe(
        target: Annotated[str, Query(min_length=1, max_length=63, description="board name")],
        scrape_timeout: Annotated[float | None, Header(
            alias="X-Prometheus-Scrape-Timeout-Seconds", include_in_schema=False)] = None,
    ) -> Response:
        """Read ``target`` over SSH/telnet now; ``board_probe_success`` says if it worked.

        While a probe of ``target`` runs, more requests for it wait for that one instead
        of taking workers of their own, so a flood of probes of a dead board holds at
        most one worker; a board in connection backoff answers at once."""
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
        job = state.inflight.get(target)
        if job is None:
            job = asyncio.get_running_loop().run_in_executor(
                state.executor, state.prober.probe, board, deadline)
            state.inflight[target] = job
            job.add_done_callback(lambda _: state.inflight.pop(target, None))
        else:
            service_metrics.PROBES_SHARED.labels(target).inc()
        try:
            body = await asyncio.wait_for(asyncio.shield(job), timeout + 0.5)
        except TimeoutError:
            body = render([], False, time.monotonic() - started)
        service_metrics.PROBES.labels(target).inc()
        service_metrics.PROBE_DURATION.labels(target).observe(time.monotonic() - started)
        if b"\nboard_probe_success 1.0\n" not in body:
            service_metrics.PROBE_FAILURES.labels(target).inc()
        return Response(body, media_type=EXPOSITION)

    app.include_router(soak.router(state, writer))
    app.include_router(runbook.router(state.runbook))
    return app


def _check(creds: HTTPAuthorizationCredentials | None, token: str) -> None:
    if creds is None or not hmac.compare_digest(
            creds.credentials.encode("utf-8", "replace"), token.encode()):
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


def _stamp(path: str | None) -> tuple[float, int, int] | None:
    """What tells a changed inventory file: mtime, size and inode (None if absent)."""
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_mtime, st.st_size, st.st_ino) if st else None

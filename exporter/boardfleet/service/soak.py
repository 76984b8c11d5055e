"""Fleet service routes for soak runs and the Alertmanager alert history.

* ``GET /soaks``: runs (JSON; an HTML index for browsers)
* ``GET /soaks/{name}``: one run (JSON; its HTML report for browsers)
* ``GET /soaks/{name}/report?format=html|json|junit|markdown``: the verdict report
* ``POST /soaks``, ``POST /soaks/{name}/stop``: start and stop runs (bearer token)
* ``POST /alerts/webhook``: Alertmanager webhook receiver (payload version 4)
* ``GET /alerts``: the alert history

Runs and alerts live in ``soaks.sqlite`` beside the inventory, shared with the CLI.
Reports query ``$BOARDFLEET_PROMETHEUS_URL`` (default the stack's Prometheus).
"""

import atexit
import os
import shutil
import tempfile
import time
from html import escape
from typing import Any, Callable, Dict, List, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from pydantic import BaseModel, Field

from boardfleet.inventory import InventoryError
from boardfleet.soak import annotations, criteria, metrics, report
from boardfleet.soak.prom import PrometheusError
from boardfleet.soak.selector import select
from boardfleet.soak.store import NAME_RE, Alert, NotFound, SoakError, SoakStore, default_path
from boardfleet.soak.webhook import WebhookPayload, record
from boardfleet.thresholds import ThresholdsError

PROMETHEUS_ENV = "BOARDFLEET_PROMETHEUS_URL"
DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
MEDIA = {"html": "text/html; charset=utf-8", "json": "application/json",
         "junit": "application/xml", "markdown": "text/markdown; charset=utf-8"}


class RunIn(BaseModel):
    name: str = Field(pattern=NAME_RE.pattern, examples=["fw-2.3-night"])
    boards: str = Field(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_.*?\[\]=!,\s-]+$",
                        examples=["rack=r1", "hi3516-*,owner=vision", "all"],
                        description="board names, globs and label=value terms")
    meta: Dict[str, str] = Field(default_factory=dict, examples=[{"firmware": "2.3"}])


class RunOut(BaseModel):
    name: str
    selector: str
    boards: List[str]
    started: float
    stopped: float | None
    active: bool
    meta: Dict[str, str]


class Stored(BaseModel):
    stored: int


def router(state: Any, writer: Callable[..., None]) -> APIRouter:
    """Routes over the store beside ``state.inventory``; ``writer`` guards the writes."""
    # An inventory without a file (tests, demos) gets a store in a temporary directory,
    # removed when the process exits.
    path = state.inventory.path
    if not path:
        tmp = tempfile.mkdtemp(prefix="boardfleet-soak-")
        atexit.register(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "boards.yml")
    store = SoakStore(default_path(path))
    metrics.register(store)
    r = APIRouter()

    def run_or_404(name: str) -> Any:
        try:
            return store.get(name)
        except SoakError as e:
            raise HTTPException(404, str(e)) from None

    def wants_html(accept: str | None) -> bool:
        return accept is not None and "text/html" in accept

    @r.get("/soaks", response_model=List[RunOut], tags=["soak"])
    def list_runs(accept: str | None = Header(None, include_in_schema=False)) -> Any:
        runs = store.runs()
        if wants_html(accept):
            rows = "".join(
                '<tr><td><a href="/soaks/%s">%s</a></td><td>%s</td><td>%d</td><td>%s</td>'
                "</tr>" % (escape(x.name), escape(x.name), "active" if x.active else "stopped",
                           len(x.boards), escape(", ".join("%s=%s" % kv
                                                           for kv in sorted(x.meta.items()))))
                for x in reversed(runs))
            return Response("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Soak runs"
                            "</title></head><body><h1>Soak runs</h1><table><tr><th>run</th>"
                            "<th>state</th><th>boards</th><th>meta</th></tr>%s</table></body>"
                            "</html>" % rows, media_type=MEDIA["html"])
        return [x.to_dict() for x in runs]

    @r.get("/soaks/{name}", response_model=RunOut, tags=["soak"],
           responses={404: {"description": "no such run"}})
    def get_run(name: str, accept: str | None = Header(None, include_in_schema=False)) -> Any:
        run = run_or_404(name)
        if wants_html(accept):
            return get_report(name, "html")
        return run.to_dict()

    @r.get("/soaks/{name}/report", tags=["soak"], response_class=Response,
           responses={404: {"description": "no such run"}})
    def get_report(name: str, format: Literal["html", "json", "junit", "markdown"] = Query(
            "html", description="report format")) -> Response:
        """The run's verdict report, queried from Prometheus now.

        With Prometheus unreachable every board fails with that as its reason (fail
        closed: CI reading the JUnit must not see a green run it could not judge).
        """
        run = run_or_404(name)
        w = report.Window(run.name, run.started, run.stopped or time.time(), run.boards,
                          run.meta, store)
        url = os.environ.get(PROMETHEUS_ENV, DEFAULT_PROMETHEUS)
        try:
            rep = report.build(w, url, criteria.load())
        except (PrometheusError, ThresholdsError) as e:
            rep = report.unjudged(w, url, "no verdict: %s" % e)
        return Response(report.render(rep, format), media_type=MEDIA[format])

    @r.post("/soaks", response_model=RunOut, status_code=201, tags=["soak"],
            dependencies=[Depends(writer)],
            responses={401: {"description": "bad token"}, 409: {"description": "run exists"},
                       404: {"description": "the selector matches no board"},
                       422: {"description": "bad name or selector"}})
    def start_run(body: RunIn) -> Dict[str, Any]:
        try:
            boards = select(state.inventory, body.boards)
            run = store.start(body.name, boards, body.boards, body.meta)
        except NotFound as e:
            raise HTTPException(404, str(e)) from None
        except (SoakError, InventoryError) as e:
            raise HTTPException(409 if "already exists" in str(e) else 422, str(e)) from None
        annotations.annotate_quietly(annotations.Grafana.from_env(), run, "start", run.started)
        return run.to_dict()

    @r.post("/soaks/{name}/stop", response_model=RunOut, tags=["soak"],
            dependencies=[Depends(writer)],
            responses={401: {"description": "bad token"}, 404: {"description": "no such run"},
                       409: {"description": "already stopped"}})
    def stop_run(name: str) -> Dict[str, Any]:
        run_or_404(name)
        try:
            run = store.stop(name)
        except SoakError as e:
            raise HTTPException(409, str(e)) from None
        annotations.annotate_quietly(annotations.Grafana.from_env(), run, "stop",
                                     run.stopped or time.time())
        return run.to_dict()

    @r.post("/alerts/webhook", response_model=Stored, tags=["alerts"],
            responses={422: {"description": "not an Alertmanager v4 payload"}})
    def alert_webhook(body: WebhookPayload) -> Stored:
        """Alertmanager webhook receiver: keeps every firing and its resolution."""
        try:
            return Stored(stored=record(store, body))
        except SoakError as e:
            raise HTTPException(500, str(e)) from None

    @r.get("/alerts", response_model=List[Alert], tags=["alerts"])
    def alert_history(start: float = Query(0, alias="from", description="Unix seconds"),
                      end: float | None = Query(None, alias="to", description="Unix seconds"),
                      board: str | None = None) -> List[Alert]:
        alerts = store.alerts(start, end if end is not None else time.time() + 86400,
                              [board] if board else None)
        return alerts

    return r

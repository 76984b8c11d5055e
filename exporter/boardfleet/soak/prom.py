"""A small Prometheus HTTP API client for reports (works with VictoriaMetrics too).

Queries go out as form POSTs, so a selector over 200 board names does not hit URL
length limits. Every error names the Prometheus URL and the query.
"""

from typing import Dict, List, Tuple

import httpx

Labels = Dict[str, str]
Points = List[Tuple[float, float]]


class PrometheusError(RuntimeError):
    """Prometheus unreachable, or a query it refused."""


class QueryError(PrometheusError):
    """Prometheus answered but refused this query (the report notes it and goes on)."""


class Prometheus:
    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def _call(self, path: str, what: str, **form: str) -> dict:
        try:
            r = self.client.post(self.url + path, data=form)
        except httpx.HTTPError as e:
            raise PrometheusError("Prometheus at %s: %s while querying %s"
                                  % (self.url, e or type(e).__name__, what)) from None
        try:
            body = r.json()
        except ValueError:
            raise PrometheusError("Prometheus at %s answered HTTP %d, not JSON, to %s"
                                  % (self.url, r.status_code, what)) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error", "HTTP %d" % r.status_code) if isinstance(body, dict) \
                else "bad answer"
            cls = QueryError if r.status_code in (400, 422) else PrometheusError
            raise cls("Prometheus at %s refused %s: %s" % (self.url, what, err))
        return body.get("data") or {}

    def instant(self, expr: str, at: float) -> List[Tuple[Labels, float]]:
        data = self._call("/api/v1/query", expr, query=expr, time="%.3f" % at)
        out = []
        for s in data.get("result") or []:
            try:
                out.append((dict(s["metric"]), float(s["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return out

    def range(self, expr: str, start: float, end: float, step: float
              ) -> List[Tuple[Labels, Points]]:
        data = self._call("/api/v1/query_range", expr, query=expr, start="%.3f" % start,
                          end="%.3f" % end, step="%.3f" % step)
        out = []
        for s in data.get("result") or []:
            try:
                points = [(float(t), float(v)) for t, v in s["values"]]
            except (KeyError, TypeError, ValueError):
                continue
            out.append((dict(s["metric"]), points))
        return out

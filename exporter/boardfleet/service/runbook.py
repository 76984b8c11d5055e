"""``GET /runbook``: prometheus/RUNBOOK.md as a page, so every alert's ``runbook_url``
(``<service>/runbook#<alertname in lower case>``) opens its section out of the box."""

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin

# The repository's copy when boardfleet runs from a checkout (`stack up`, the demo);
# the container image passes --runbook.
DEFAULT = Path(__file__).resolve().parents[3] / "prometheus" / "RUNBOOK.md"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>boardfleet runbook</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.5}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;
vertical-align:top}code{background:#f4f4f4;padding:0 .2rem}h2:target{background:#fff3c4}
</style></head><body>
%s
</body></html>
"""


def render(markdown: str) -> str:
    """The runbook as one HTML page; each heading's id is its text in lower case."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table").use(
        anchors_plugin, min_level=2, max_level=3)
    return PAGE % md.render(markdown)


def router(path: Path | None) -> APIRouter:
    r = APIRouter()

    @r.get("/runbook", response_class=HTMLResponse, tags=["service"],
           responses={404: {"description": "no runbook file configured or readable"}})
    def runbook() -> HTMLResponse:
        """What each alert means and what to do: the target of every alert's runbook link."""
        source = path or DEFAULT
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            return HTMLResponse(PAGE % "<p>The runbook cannot be read: %s. Start the service "
                                "with <code>--runbook FILE</code> (prometheus/RUNBOOK.md)."
                                "</p>" % html.escape(str(e)), status_code=404)
        return HTMLResponse(render(text))

    return r

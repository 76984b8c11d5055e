"""Two soak reports side by side (firmware A against B), board by board."""

import json
from typing import Any, Dict, List

from boardfleet.soak.render import to_dict
from boardfleet.soak.report import BoardReport, Report


def _headline(b: BoardReport | None) -> Dict[str, Any]:
    """The figures a lab compares first, from one board's evidence."""
    if b is None:
        return {"verdict": "absent", "reasons": []}
    f = b.figures
    p99 = [v.get("end_p99") for v in (f.get("latency") or {}).values() if v.get("end_p99")]
    losses = [z.get("loss_bytes") for z in (f.get("mmz") or {}).values()
              if z.get("loss_bytes") is not None]
    return {"verdict": b.verdict, "reasons": b.reasons,
            "reboots": len(f.get("reboots") or []),
            "app_restarts": sum((f.get("app_restarts") or {}).values()),
            "mmz_loss_bytes_max": max(losses) if losses else None,
            "ddr_share_above": (f.get("ddr") or {}).get("share_above"),
            "latency_end_p99_max_seconds": max(p99) if p99 else None}


def compare(a: Report, b: Report) -> Dict[str, Any]:
    ba = {x.board: x for x in a.boards}
    bb = {x.board: x for x in b.boards}
    return {"runs": [to_dict(a)["run"], to_dict(b)["run"]],
            "boards": [{"board": name, "a": _headline(ba.get(name)), "b": _headline(bb.get(name))}
                       for name in sorted(set(ba) | set(bb))]}


def to_json(a: Report, b: Report) -> str:
    return json.dumps(compare(a, b), indent=2) + "\n"


def to_markdown(a: Report, b: Report) -> str:
    c = compare(a, b)
    meta = [", ".join("%s=%s" % kv for kv in sorted(r["meta"].items())) for r in c["runs"]]
    lines = ["**Soak %s** (%s) against **%s** (%s)" % (a.name, meta[0] or "-", b.name,
                                                       meta[1] or "-"), "",
             "| board | %s | %s | MMZ loss (MiB) | DDR > bound | p99 end (ms) |"
             % (a.name, b.name), "|---|---|---|---|---|---|"]
    for row in c["boards"]:
        x, y = row["a"], row["b"]
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            row["board"], _cell(x), _cell(y),
            _pair(x, y, "mmz_loss_bytes_max", 1 / 2**20, "%.0f"),
            _pair(x, y, "ddr_share_above", 100, "%.0f %%"),
            _pair(x, y, "latency_end_p99_max_seconds", 1000, "%.0f")))
    return "\n".join(lines) + "\n"


def _cell(h: Dict[str, Any]) -> str:
    mark = {"pass": "✅ pass", "fail": "❌ fail"}.get(h["verdict"], h["verdict"])
    reasons: List[str] = h["reasons"]
    return (mark + ": " + "; ".join(reasons) if reasons else mark).replace("|", "\\|")


def _pair(x: Dict[str, Any], y: Dict[str, Any], key: str, scale: float, fmt: str) -> str:
    def one(h: Dict[str, Any]) -> str:
        v = h.get(key)
        return "-" if v is None else fmt % (v * scale)

    return "%s → %s" % (one(x), one(y))

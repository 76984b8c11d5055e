"""Annotations: firing alerts with their real text, and soak-run windows.

``ALERTS`` carries an alert's labels but not its annotations, and Grafana prints the
bare name of a ``{{label}}`` the series lacks (hence the old literal "summary"). So
each alert (and each variant of it, such as BoardDown's ``cause``) gets its own
annotation whose text is the rule's summary plus only the labels that alert carries,
taken from the generated rules so the dashboards and the alerts cannot disagree.
"""

import re
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db

from boardfleet import rules
from boardfleet.dashboards.common import DS, THRESHOLDS_FILE

SOAK_RUNS = "Soak runs"
# Labels every alert of the fleet carries; the rest are the alert's own ("why").
_COMMON = {"alertname", "alertstate", "severity", "board", "platform", "rack", "owner",
           "instance", "job"}
_LABEL = re.compile(r"\$labels\.(\w+)")
_BOUND = re.compile(r"\((alert [^)]*)\)")


@dataclass(frozen=True)
class AlertText:
    """One alert variant: its selector and the text Grafana renders for it."""
    alertname: str
    severity: str
    static: tuple[tuple[str, str], ...]   # rule labels besides severity, e.g. cause
    summary: str
    labels: tuple[str, ...]               # labels named in the description, in order
    bound: str                            # "alert above 40%" etc.

    @property
    def name(self) -> str:
        extra = " ".join(v for _, v in self.static)
        return "Alert: %s%s" % (self.alertname, " (%s)" % extra if extra else "")

    def matchers(self) -> str:
        return ", ".join(['alertname="%s"' % self.alertname, 'alertstate="firing"',
                          *('%s="%s"' % kv for kv in self.static)])

    def text(self) -> str:
        """``<summary>: zone {{zone}}, board {{board}} (alert below 5% free ...)``."""
        where = ", ".join("%s {{%s}}" % (label, label) for label in self.labels)
        return "%s: %s%s" % (self.summary, where, " (%s)" % self.bound if self.bound else "")


def alert_texts() -> list[AlertText]:
    """Every alert of the generated rules, in rule order."""
    out = []
    for group in rules.alerting_rules(rules.load_thresholds(THRESHOLDS_FILE))["groups"]:
        for rule in group["rules"]:
            ann = rule.get("annotations", {})
            desc = ann.get("description", "")
            bound = _BOUND.search(desc)
            out.append(AlertText(
                alertname=rule["alert"],
                severity=str(rule.get("labels", {}).get("severity", "")),
                static=tuple(sorted((k, str(v)) for k, v in rule.get("labels", {}).items()
                                    if k != "severity")),
                summary=ann.get("summary", rule["alert"]),
                labels=tuple(dict.fromkeys(_LABEL.findall(desc))),
                bound=bound.group(1) if bound else ""))
    return out


def fields(name: str) -> dict[str, Any]:
    """Prometheus annotation fields the SDK's AnnotationQuery model does not carry."""
    if name == SOAK_RUNS:
        return {"titleFormat": "Soak {{soak}}",
                "textFormat": "board {{board}} in soak run {{soak}}",
                "tagKeys": "soak,board", "step": "60s", "useValueForTime": False}
    for a in alert_texts():
        if a.name == name:
            own = [label for label in a.labels if label not in _COMMON]
            return {"titleFormat": "{{alertname}} on {{board}}", "textFormat": a.text(),
                    "tagKeys": ",".join(["severity", "board", *own]), "step": "60s",
                    "useValueForTime": False}
    return {}


def alerts(board_matcher: str) -> list[db.AnnotationQuery]:
    """One annotation per alert variant, for the boards ``board_matcher`` selects."""
    return [db.AnnotationQuery().name(a.name).datasource(DS).enable(True).icon_color(
        "red" if a.severity == "critical" else "orange")
        .expr("ALERTS{%s, board%s}" % (a.matchers(), board_matcher))
        for a in alert_texts()]


def soak_runs(board_matcher: str) -> db.AnnotationQuery:
    """Soak-run windows as shaded regions (``boardfleet_soak_active`` from issue 16)."""
    return (db.AnnotationQuery().name(SOAK_RUNS).datasource(DS).enable(True)
            .icon_color("rgba(50, 116, 217, 0.25)")
            .expr('boardfleet_soak_active{soak=~"$soak", board%s} == 1' % board_matcher))

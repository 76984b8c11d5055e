"""Tables with one row per board: each column an instant query by board, joined on it."""

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table as tb
from grafana_foundation_sdk.models import dashboard as dm

from boardfleet.dashboards.common import BOARD_UID, organize, prop, table, table_query

# Column title, unit, instant PromQL by board, colour steps (None: no colour).
Column = tuple[str, str, str, db.ThresholdsConfig | None]
BOARD_LINK = ("/d/%s/board-detail?var-board=${__data.fields.board}&${__url_time_range}"
              % BOARD_UID)


def board_link() -> list[dm.DynamicConfigValue]:
    """Field override: a board name links to its detail dashboard, same time range."""
    return [prop("links", [{"title": "Board detail: ${__value.raw}", "url": BOARD_LINK}])]


def board_table(title: str, cols: list[Column], labels: list[str], sort_by: str,
                description: str, height: int, label_queries: tuple[str, ...] = ()
                ) -> tb.Panel:
    """One row per board, worst first by ``sort_by``; cells coloured per column.

    ``labels`` are label columns kept beside ``board`` (from queries grouping by them);
    ``label_queries`` add queries read for their labels only (their values are dropped).
    """
    exprs = [c[2] for c in cols] + list(label_queries)
    refs = [chr(ord("A") + i) for i in range(len(exprs))]
    values = ["Value #%s" % r for r in refs[:len(cols)]]
    keep = ["board", *labels, *values]
    p = (table(title, *[table_query(e, r) for r, e in zip(refs, exprs, strict=True)],
               height=height, description=description)
         .with_transformation(dm.DataTransformerConfig(
             id_val="joinByField", options={"byField": "board", "mode": "outer"}))
         .with_transformation(dm.DataTransformerConfig(
             id_val="filterFieldsByName",
             options={"include": {"pattern": "^(%s)$" % "|".join(keep)}}))
         .with_transformation(organize(
             [], {v: c[0] for v, c in zip(values, cols, strict=True)}, keep))
         .sort_by([cb.TableSortByFieldState().display_name(sort_by).desc(True)])
         .override_by_name("board", board_link()))
    for name, unit, _, colours in cols:
        props = [prop("unit", unit)]
        if colours is not None:
            props += [prop("thresholds", colours.build()),
                      prop("custom.cellOptions", {"type": "color-background"})]
        p = p.override_by_name(name, props)
    return p

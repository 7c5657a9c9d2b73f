"""SOP compliance statistics for the heads of office: per step, kecamatan, service, officer and
ISO week, over the cases opened in a period; the tables behind every chart, and the charts as
inline SVG (no script, no external resource).

The package: `filters` (the period and the narrowing, from GET parameters), `figures` (what the
dashboard shows, as data), `rollups` (the figures read from the rollups: what `load` serves),
`stats` (the same figures computed exactly from a list of cases: their definition), `tabular`
(the tables behind every chart, and their cells for people), `charts` (the SVG charts). The
CSV and XLSX downloads are `sapa.services.export`, the monthly PDF `sapa.services.report_pdf`.

Definitions (the same everywhere: page, CSV, XLSX and the monthly PDF):

- The cases counted are those *opened* (greeted) in the period, in office time (the region's
  time zone), narrowed by kecamatan and service. Each case contributes every step run it has,
  whenever the run was done.
- A step run is *handled* when it is done by the step's own event or by an officer's decision
  on it (a correction request, a return, a rejection); runs closed by the resident's
  cancellation or by expiry are not. Its handling time is claimed → done, its waiting time
  ready → claimed, as in `sapa.domain.sla.timeline`.
- *Within standard*: the run is not breached (`StepTiming.breached`, handling ≤ mutu baku).
  The office's overall compliance counts runs done by officers only (the resident's greeting
  and the system's own steps take no time and would flatter it).
- Median: the middle value (the mean of the two middle ones for an even count). 90th
  percentile: nearest rank (the smallest value with at least 90 % of the values at or below).
  Read from the rollups, each is the mean of the values in the log-spaced bucket (eight per
  doubling) that holds its rank: within a factor 2^(1/8) (±9 %) of the exact figure. Counts,
  totals and compliance are exact.
- Handling, waiting and lead times are on the clock each is measured on (sla.toml: officers'
  steps on working hours); where that is not wall-clock time the wall-clock handling time is
  given besides. Lead time: greeting → delivery, for delivered cases. Backlog: open now.
"""

from __future__ import annotations

from sapa.domain.rollup import NO_SERVICE
from sapa.services.dashboard.charts import (
    CHARTS,
    kecamatan_chart,
    steps_chart,
    weeks_chart,
)
from sapa.services.dashboard.figures import Dashboard, StepStat
from sapa.services.dashboard.filters import (
    Filters,
    month_filters,
    month_label,
    parse_filters,
    report_months,
)
from sapa.services.dashboard.rollups import load
from sapa.services.dashboard.stats import (
    compute,
    load_from_cases,
    median,
    percentile,
    report_keep,
)
from sapa.services.dashboard.tabular import TABLE_NAMES, fmt_cell, fmt_share, tables

__all__ = [
    "CHARTS",
    "NO_SERVICE",
    "TABLE_NAMES",
    "Dashboard",
    "Filters",
    "StepStat",
    "compute",
    "fmt_cell",
    "fmt_share",
    "kecamatan_chart",
    "load",
    "load_from_cases",
    "median",
    "month_filters",
    "month_label",
    "parse_filters",
    "percentile",
    "report_keep",
    "report_months",
    "steps_chart",
    "tables",
    "weeks_chart",
]

"""The reports page (charts drawn as inline SVG on the server) and its CSV."""

from __future__ import annotations

import csv
import io

from flask import Response, render_template, request

from kefu import reports as figures
from kefu.extensions import db

from .blueprint import bp, now, parse_int, record
from .present import reason_label


def _days() -> int:
    return min(parse_int(request.args.get("days")) or 14, 90)


@bp.get("/reports")
def reports() -> str:
    """Messages, containment, handoffs, deadlines, tickets by model and fault, CSAT, gaps."""
    days = _days()
    report = figures.build(now(), days=days)
    page = render_template(
        "console/reports.html",
        r=report,
        days=days,
        msg_items=[(day, inbound) for day, inbound, _ in report.messages_by_day],
        reason_items=[(reason_label(k), v) for k, v in report.handoffs_by_reason.most_common()],
        csat_items=[(f"{s}★", report.csat_scores.get(s, 0)) for s in range(5, 0, -1)],
    )
    db.session.commit()  # the settled days counted for this page are kept for the next one
    return page


@bp.get("/reports.csv")
def reports_csv() -> Response:
    """The same figures as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    days = _days()
    out = io.StringIO()
    csv.writer(out).writerows(figures.csv_rows(figures.build(now(), days=days)))
    record("reports.export", "report", days)
    db.session.commit()
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=kefu-report-{days}d.csv"},
    )

"""Routes of the history blueprint: the audit log page and its CSV export.

The filters are the query string (GET, so a filtered view is a link to share); the service
checks them and decides what the viewer may read. A bad filter shows its message with a 422
and no entries.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from flask import Response, current_app, render_template, request, stream_with_context
from flask_login import current_user, login_required

from app.blueprints.history import bp
from app.services import audit
from app.services.errors import ValidationError

FILTERS = ("actor", "action", "subject_kind", "subject_id", "since", "until")


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) - 1 if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 1_000_000 else 0


@bp.get("/")
@login_required
def index():
    values = {name: request.args.get(name, "") for name in FILTERS}
    actors, actions = audit.filter_choices(current_user)
    context = {
        "values": values,
        "actors": actors,
        "actions": actions,
        "subject_kinds": audit.SUBJECT_KINDS,
        "everything": audit.sees_everything(current_user),
        "active": {name: value for name, value in values.items() if value},
    }
    try:
        wanted = audit.parse_filter(current_user, values)
    except ValidationError as exc:
        return render_template("history/index.html", log=None, error=exc, **context), 422
    log = audit.entries(current_user, wanted, _page_number(), current_app.config["PAGE_SIZE"])
    return render_template("history/index.html", log=log, error=None, **context)


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_lines(entries: Iterator) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(audit.CSV_COLUMNS)
    for entry in entries:
        row = [getattr(entry, column) for column in audit.CSV_COLUMNS]
        row[1] = entry.at.isoformat(timespec="seconds") + "Z"
        row[-1] = json.dumps(entry.data, sort_keys=True) if entry.data else ""
        writer.writerow([_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@bp.get("/export.csv")
@login_required
def export():
    values = {name: request.args.get(name, "") for name in FILTERS}
    try:
        wanted = audit.parse_filter(current_user, values)
    except ValidationError as exc:
        return Response(exc.message + "\n", status=422, mimetype="text/plain")
    entries = audit.export(current_user, wanted)
    response = Response(stream_with_context(_csv_lines(entries)), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="kargo-history.csv"'
    return response

"""The cluster creation form: name, the standard kinds, custom kinds, maximum deployments.

Quantities stay raw strings here: `services.clusters.create_cluster` parses them, so the page
and the API share one set of rules and messages. The form only shapes the input and places the
service's field errors next to the right inputs.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import FieldList, Form, FormField, StringField

from app.quantities import STANDARD_KINDS, QuantityError, validate_kind

# Highest index a custom-kind row may carry; rows are numbered by the "Add" button, and
# removed rows leave gaps, so this is far above the kinds a cluster may have.
MAX_ROW_INDEX = 999
# Rows read from one submission, at most: anything beyond is dropped, not processed.
MAX_ROWS = 64


class CustomKindForm(Form):
    """One custom resource kind row (no CSRF of its own: it lives inside ClusterForm)."""

    kind = StringField("Resource kind")
    amount = StringField("Capacity (whole units)")

    @property
    def is_blank(self) -> bool:
        return not (self.kind.data or "").strip() and not (self.amount.data or "").strip()


class ClusterForm(FlaskForm):
    """Every rule is checked by the service (one pass, every message at once); only CSRF here."""

    name = StringField("Name")
    cpu = StringField("CPU (cores)")
    gpu = StringField("GPU (devices)")
    ram = StringField("RAM (GiB)")
    custom = FieldList(FormField(CustomKindForm), min_entries=0, max_entries=MAX_ROWS)
    max_deployments = StringField("Maximum deployments")

    def resources(self) -> list[tuple[str, str]]:
        """(kind, raw amount) pairs in form order; blank custom rows are ignored."""
        pairs = [(kind, getattr(self, kind).data or "") for kind in STANDARD_KINDS]
        pairs += [
            ((row.kind.data or "").strip(), row.amount.data or "")
            for row in self.custom
            if not row.form.is_blank
        ]
        return pairs

    def next_row_index(self) -> int:
        """The index the next "Add resource kind" row gets (after every row already shown)."""
        indices = [int(row.name.rsplit("-", 1)[-1]) for row in self.custom]
        return max(indices, default=-1) + 1

    def place_errors(self, fields: dict[str, str]) -> None:
        """Put the service's field errors next to their inputs (form-wide ones on top)."""
        for key, message in fields.items():
            target = self._field_for(key)
            if target is None:
                self.form_errors.append(message)
            else:
                target.errors = [*target.errors, message]

    def _field_for(self, key: str):
        if key in ("name", "max_deployments"):
            return getattr(self, key)
        if not key.startswith("resource."):
            return None
        kind = key.removeprefix("resource.")
        # A custom row naming the kind wins: that is where a duplicate or a bad name was typed.
        for row in reversed(self.custom.entries):
            if row.form.is_blank:
                continue
            typed = (row.kind.data or "").strip()
            if typed == kind or typed.lower() == kind:
                return row.amount if typed and _kind_is_valid(typed) else row.kind
        if kind in STANDARD_KINDS:
            return getattr(self, kind)
        return None


def _kind_is_valid(typed: str) -> bool:
    try:
        validate_kind(typed)
    except QuantityError:
        return False
    return True

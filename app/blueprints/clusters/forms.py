"""The cluster creation form: name, the standard kinds, custom kinds, maximum deployments.

Quantities stay raw strings here: `services.clusters.create_cluster` parses them, so the page
and the API share one set of rules and messages. The form only shapes the input and places the
service's field errors next to the right inputs.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, FieldList, Form, FormField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from app.quantities import STANDARD_KINDS, QuantityError, validate_kind
from app.services.clusters import FairUseSettings, RepackSettings

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


class RepackForm(Form):
    """A cluster's repack settings (docs/scheduling.md, "Repack"): on the create form and on
    the cluster page, for owners and admins. Raw strings, checked by the clusters service."""

    enabled = BooleanField("Repack: move running work of a priority to fit queued work of it")
    threshold = StringField("Minimum gain per move (% of utilization)")
    max_per_hour = StringField("Moves per hour, at most")
    cooldown_minutes = StringField("Minutes before the same deployment moves again")

    def settings(self) -> dict[str, object]:
        """The settings typed (a blank number keeps its current or default value)."""
        typed: dict[str, object] = {"enabled": bool(self.enabled.data)}
        for name in ("threshold", "max_per_hour", "cooldown_minutes"):
            value = (getattr(self, name).data or "").strip()
            if value:
                typed[name] = value
        return typed

    def describe_errors(self, fields: dict[str, str]) -> str:
        """The service's `repack.<name>` errors as one sentence naming each setting."""
        names = {
            "repack.enabled": "Repack",
            "repack.threshold": "The minimum gain per move",
            "repack.max_per_hour": "Moves per hour",
            "repack.cooldown_minutes": "The cooldown",
        }
        return " ".join(f"{names.get(key, key)} {message}." for key, message in fields.items())

    def place_errors(self, fields: dict[str, str]) -> list[str]:
        """Put `repack.<name>` errors next to their inputs; return the others."""
        others = []
        for key, message in fields.items():
            target = getattr(self, key.removeprefix("repack."), None)
            if key.startswith("repack.") and target is not None:
                target.errors = [*target.errors, message]
            else:
                others.append(message)
        return others


class ClusterForm(FlaskForm):
    """Every rule is checked by the service (one pass, every message at once); only CSRF here."""

    name = StringField("Name")
    # "" is simulated; otherwise an engine the operator declared (checked by the service).
    engine = SelectField(
        "Runs on", choices=[SelectChoice("", "Simulated: accounting only")], validate_choice=False
    )
    cpu = StringField("CPU (cores)")
    gpu = StringField("GPU (devices)")
    ram = StringField("RAM (GiB)")
    custom = FieldList(FormField(CustomKindForm), min_entries=0, max_entries=MAX_ROWS)
    max_deployments = StringField("Maximum deployments")
    repack = FormField(RepackForm)

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
        if key in ("name", "max_deployments", "engine"):
            return getattr(self, key)
        if key.startswith("repack."):
            return getattr(self.repack.form, key.removeprefix("repack."), None)
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


class RepackSettingsForm(FlaskForm):
    """The cluster page's repack settings form (CSRF checked)."""

    repack = FormField(RepackForm)


def repack_data(settings: RepackSettings) -> dict[str, object]:
    """A cluster's repack settings as the form shows them."""
    return {
        "enabled": settings.enabled,
        "threshold": settings.threshold_percent,
        "max_per_hour": str(settings.max_per_hour),
        "cooldown_minutes": str(settings.cooldown_minutes),
    }


class FairUseForm(FlaskForm):
    """The cluster page's fair-use settings (CSRF checked); the service parses and checks."""

    min_run_minutes = StringField("Minimum run time (minutes)")
    starvation_minutes = StringField("Starvation threshold (minutes)")


def fair_use_data(settings: FairUseSettings) -> dict[str, object]:
    """A cluster's fair-use settings as the form shows them (an empty threshold is off)."""
    return {
        "min_run_minutes": str(settings.min_run_minutes),
        "starvation_minutes": ""
        if settings.starvation_minutes is None
        else str(settings.starvation_minutes),
    }

"""Forms of the deployment pages: the deploy form (one quantity input per kind of the chosen
cluster) and the list filters.

Values stay raw strings: `services.deployments.submit` validates name, image, priority and
quantities, so the page and the API share one set of rules and messages. The forms only shape
the input and put the service's field errors next to the right inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask_wtf import FlaskForm
from wtforms import Field, SearchField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from app.blueprints.query import bounded_int
from app.quantities import unit_label
from app.services.deployments import LIST_SORTS, PRIORITY_PRESETS, SEARCH_MAX_LENGTH
from app.services.errors import NotFound

PRESET_CHOICES = [
    SelectChoice(name, f"{name.title()} ({value})") for name, value in PRIORITY_PRESETS.items()
]
RESOURCE_PREFIX = "resource_"
STATUS_CHOICES = [
    SelectChoice("", "Any status"),
    SelectChoice("running", "Running"),
    SelectChoice("pending", "Queued"),
]


class DeployForm(FlaskForm):
    """Name, image, priority; `with_kinds` adds one quantity field per resource kind."""

    cluster_id = SelectField("Cluster", coerce=int, validate_choice=True)
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
    image = StringField("Image", validators=[Length(max=600)])
    priority_preset = SelectField("Priority", choices=PRESET_CHOICES, default="normal")
    priority = StringField("Exact priority (optional)", validators=[Optional(), Length(max=20)])
    # What a real container needs (engine clusters): checked by services.container_spec.
    ports = StringField("Ports to publish (optional)", validators=[Length(max=400)])
    env = TextAreaField("Environment variables (optional)", validators=[Length(max=300_000)])
    command = StringField("Command (optional)", validators=[Length(max=2000)])
    preemption_policy = SelectField(
        "When the cluster is full",
        choices=[
            ("preempt_lower", "May preempt lower priority"),
            ("never", "Never preempts: wait for free room"),
        ],
        default="preempt_lower",
    )
    max_run = StringField("Maximum run time (optional)", validators=[Length(max=20)])

    kinds: Sequence[str] = ()

    @classmethod
    def with_kinds(cls, kinds: Sequence[str], **kwargs) -> DeployForm:
        """A form class for a cluster with these kinds (fields are class attributes in WTForms)."""
        attributes: dict[str, object] = {"kinds": tuple(kinds)}
        for kind in kinds:
            attributes[RESOURCE_PREFIX + kind] = StringField(
                f"{kind} ({unit_label(kind)})", validators=[Length(max=40)]
            )
        return type("DeployFormForCluster", (cls,), attributes)(**kwargs)

    def resource_fields(self) -> list[tuple[str, Field]]:
        return [(kind, self[RESOURCE_PREFIX + kind]) for kind in self.kinds]

    def resource_rows(self, resources: Sequence) -> list[tuple[Field, object]]:
        """(quantity field, the cluster's ResourceUsage) pairs, in the cluster's kind order."""
        return [(self[RESOURCE_PREFIX + r.kind], r) for r in resources if r.kind in self.kinds]

    def requests_raw(self) -> dict[str, str]:
        """Kind -> typed quantity, blank inputs left out (a blank box means "none of it")."""
        return {
            kind: field.data.strip()
            for kind, field in self.resource_fields()
            if field.data and field.data.strip()
        }

    def priority_raw(self) -> str:
        """The exact number when given, else the preset name (the service reads both)."""
        exact = (self.priority.data or "").strip()
        return exact or self.priority_preset.data or "normal"

    def is_blank(self) -> bool:
        """Nothing typed yet: the preview shows a hint rather than a list of problems."""
        return not (self.image.data or "").strip() and not self.requests_raw()

    def place_errors(self, fields: dict[str, str], message: str) -> None:
        """Put the service's field errors next to their inputs; anything else (limits, an
        empty request) is said once on top, in the service's full sentence."""
        unplaced = not fields
        for key, problem in fields.items():
            target = self._field_for(key)
            if target is None:
                unplaced = True
            else:
                target.errors = [*target.errors, problem]
        if unplaced:
            self.form_errors.append(message)

    def _field_for(self, key: str) -> Field | None:
        if key in ("name", "image", "cluster_id", "ports", "env", "command"):
            return self[key]
        if key == "priority":
            return self.priority if (self.priority.data or "").strip() else self.priority_preset
        if key.startswith("resource.") and key.removeprefix("resource.") in self.kinds:
            return self[RESOURCE_PREFIX + key.removeprefix("resource.")]
        return None


def cluster_choices(clusters: Sequence) -> list[SelectChoice]:
    return [SelectChoice(str(c.id), c.name) for c in clusters]


def positive_int(raw: object) -> int | None:
    """A whole number >= 1 of at most ten digits typed in a form or a query string, or None."""
    return bounded_int(raw, 1, 10**10 - 1)


class FilterForm(FlaskForm):
    """The list's query string (no CSRF: it only reads), read into plain filter values.

    A bad value is never an error page: it is dropped with a message saying so. A well-formed
    id of a cluster that is not the organization's answers 404, like any foreign id.
    """

    class Meta:
        csrf = False

    q = SearchField("Search", validators=[Optional(), Length(max=SEARCH_MAX_LENGTH)])
    cluster_id = SelectField("Cluster", default="", validate_choice=True)
    status = SelectField("Status", choices=STATUS_CHOICES, default="", validate_choice=True)
    owner = SelectField("Created by", default="", validate_choice=True)

    cluster_id_value: int | None = None
    status_value: str | None = None
    owner_value: int | None = None
    search_value: str | None = None
    sort: str | None = None
    descending: bool = False
    page: int = 1
    problems: list[str]

    @classmethod
    def read(cls, args: Mapping[str, str], clusters: Sequence, members: Sequence) -> FilterForm:
        form = cls(formdata=args)
        form.cluster_id.choices = [SelectChoice("", "All clusters"), *cluster_choices(clusters)]
        form.owner.choices = [
            SelectChoice("", "Anyone"),
            *(SelectChoice(str(m.id), m.display_name) for m in members),
        ]
        form.validate()
        form.problems = []
        raw_cluster = (args.get("cluster_id") or "").strip()
        form.cluster_id_value = positive_int(raw_cluster)
        if raw_cluster and form.cluster_id_value is None:
            form.problems.append(f"{raw_cluster!r} is not a cluster id; showing every cluster.")
        elif form.cluster_id_value is not None and "cluster_id" in form.errors:
            raise NotFound("No such cluster.")
        form.status_value = form.status.data or None
        if "status" in form.errors:
            form.status_value = None
            form.problems.append(
                f"Unknown status {args.get('status', '')!r}: choose running or queued; "
                "showing both."
            )
        raw_owner = (args.get("owner") or "").strip()
        form.owner_value = positive_int(raw_owner)
        if raw_owner and (form.owner_value is None or "owner" in form.errors):
            form.owner_value = None
            form.owner.data = ""
            form.problems.append(
                f"{raw_owner!r} is not a member of your organization; showing everyone's."
            )
        search = (form.q.data or "").strip()
        if "q" in form.errors:
            search = search[:SEARCH_MAX_LENGTH]
            form.q.data = search
            form.problems.append(
                f"A search has at most {SEARCH_MAX_LENGTH} characters; the rest was left out."
            )
        form.search_value = search or None
        raw_sort = (args.get("sort") or "").strip()
        if raw_sort in LIST_SORTS:
            form.sort = raw_sort
            form.descending = args.get("dir") == "desc"
        elif raw_sort:
            form.problems.append(f"Cannot sort by {raw_sort!r}; showing the usual order.")
        raw_page = args.get("page")
        form.page = positive_int(raw_page) or 1
        if raw_page and positive_int(raw_page) is None:
            form.problems.append(f"{raw_page!r} is not a page number; showing the first page.")
        return form

    def query(self, **changes: object) -> dict[str, object]:
        """The list's query string as it stands (empty values left out), with `changes`."""
        values: dict[str, object] = {
            "q": self.search_value,
            "cluster_id": self.cluster_id_value,
            "status": self.status_value,
            "owner": self.owner_value,
            "sort": self.sort,
            "dir": "desc" if self.sort and self.descending else None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value not in (None, "")}

    def sort_link(self, column: str) -> dict[str, object]:
        """The query string of a column heading: sort by it, or reverse it when it is the sort
        already (back to page 1)."""
        descending = self.sort == column and not self.descending
        return self.query(sort=column, dir="desc" if descending else None, page=None)

    def sort_state(self, column: str) -> str:
        """The aria-sort value of a column heading."""
        if self.sort != column:
            return "none"
        return "descending" if self.descending else "ascending"

"""Cluster pages: the list, the create form (custom kinds added with htmx), the detail page, its
live utilization partial, and delete.

Views stay thin: read the input, call one service function, render or redirect. Another
organization's cluster raises NotFound in the services, so it answers 404 exactly like an id
that does not exist.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from app.blueprints import charts, live
from app.blueprints.clusters import bp
from app.blueprints.clusters.forms import (
    MAX_ROW_INDEX,
    ClusterForm,
    CustomKindForm,
    FairUseForm,
    RepackSettingsForm,
    fair_use_data,
    repack_data,
)
from app.blueprints.query import bounded_int
from app.services import clusters, dashboards, deployments, engines
from app.services.errors import Conflict, ValidationError


@bp.get("/")
@login_required
def index():
    live_version = dashboards.list_version(current_user)
    listing = dashboards.cluster_list(current_user, _page_number(request.args.get("page")))
    return render_template(
        "clusters/index.html",
        listing=listing,
        live_version=live_version,
        sparklines=_sparklines(listing),
    )


def _sparklines(listing: dashboards.ClusterList) -> dict:
    """Each listed cluster's utilization over the last day, drawn small (clusters/_sparkline)."""
    return charts.sparklines(
        clusters.usage_sparklines(current_user.organization_id, [c.id for c in listing.items])
    )


@bp.get("/live")
def live_list():
    """The list's polling partial: 204/304 when no cluster of the organization changed."""
    page = _page_number(request.args.get("page"))

    def render(etag: str) -> str:
        listing = dashboards.cluster_list(current_user, page)
        return render_template(
            "clusters/_list.html",
            listing=listing,
            live_version=etag,
            sparklines=_sparklines(listing),
        )

    return live.poll(
        lambda: dashboards.list_version(current_user),
        render,
        url_for("clusters.index", page=page),
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create():
    if not clusters.can_create_cluster(current_user):
        abort(403, "Only an owner or an admin can create clusters in your organization.")
    form = ClusterForm(
        max_deployments=str(clusters.default_max_deployments()),
        repack=repack_data(clusters.default_repack()),
    )
    form.engine.choices = [
        SelectChoice("", "Simulated: accounting only"),
        *(
            SelectChoice(choice.name, f"Engine {choice.name} ({choice.driver})")
            for choice in engines.engine_choices(current_user.organization_id)
        ),
    ]
    if form.validate_on_submit():
        try:
            cluster = clusters.create_cluster(
                current_user,
                form.name.data,
                form.resources(),
                form.max_deployments.data,
                form.repack.form.settings(),
                engine=form.engine.data or None,
            )
        except ValidationError as exc:
            form.place_errors(exc.fields)
        else:
            flash(f"Cluster {cluster.name} created.", "success")
            return redirect(url_for("clusters.detail", cluster_id=cluster.id))
    next_index = form.next_row_index()
    page = render_template(
        "clusters/create.html",
        form=form,
        next_index=next_index,
        can_add_row=next_index <= MAX_ROW_INDEX,
    )
    return page, 422 if form.is_submitted() else 200


@bp.get("/new/engine")
@login_required
def engine_offer():
    """What the chosen engine offers (its capacity, read from it now): shown before creating."""
    offer = engines.offer(current_user.organization_id, request.args.get("engine", ""))
    return render_template("clusters/_engine_offer.html", offer=offer)


@bp.get("/new/resource-row")
@login_required
def resource_row():
    """One empty custom-kind row for the create form, plus the "Add" button re-armed (oob)."""
    index = bounded_int(request.args.get("index"), 0, MAX_ROW_INDEX, max_digits=9)
    if index is None:
        abort(400, "index must be a whole number from 0 to 999")
    row = CustomKindForm(prefix=f"custom-{index}-")
    return render_template(
        "clusters/_custom_row.html",
        row=row,
        next_index=index + 1,
        can_add_row=index + 1 <= MAX_ROW_INDEX,
        oob=True,
    )


@bp.get("/<int:cluster_id>")
@login_required
def detail(cluster_id: int):
    live_version = dashboards.utilization_etag(current_user, cluster_id)
    cluster = dashboards.cluster_detail(current_user, cluster_id)
    return render_template(
        "clusters/detail.html",
        cluster=cluster,
        live=cluster.live,
        live_version=live_version,
        engine=cluster.engine,
        engine_version=dashboards.engine_etag(cluster.id, cluster.engine),
        usage=_usage_chart(cluster_id, request.args.get("usage")),
        repack_form=RepackSettingsForm(data={"repack": repack_data(cluster.repack)}),
        fair_use_form=FairUseForm(data=fair_use_data(cluster.fair_use)),
    )


@bp.post("/<int:cluster_id>/fair-use")
@login_required
def fair_use(cluster_id: int):
    """The cluster page's fair-use settings (owners and admins)."""
    form = FairUseForm()
    if form.validate_on_submit():
        try:
            snap = clusters.update_fair_use(
                current_user,
                cluster_id,
                {
                    "min_run_minutes": form.min_run_minutes.data,
                    "starvation_minutes": form.starvation_minutes.data,
                },
            )
        except ValidationError as exc:
            flash(" ".join(exc.fields.values()) or exc.message, "error")
        else:
            flash(snap.fair_use.describe(), "success")
    return redirect(url_for("clusters.detail", cluster_id=cluster_id))


@bp.post("/<int:cluster_id>/repack")
@login_required
def repack(cluster_id: int):
    """The cluster page's repack settings (owners and admins)."""
    form = RepackSettingsForm()
    if form.validate_on_submit():
        try:
            snap = clusters.update_repack(current_user, cluster_id, form.repack.form.settings())
        except ValidationError as exc:
            flash(form.repack.form.describe_errors(exc.fields) or exc.message, "error")
        else:
            flash(snap.repack.describe(), "success")
    return redirect(url_for("clusters.detail", cluster_id=cluster_id))


@bp.get("/<int:cluster_id>/utilization")
def utilization(cluster_id: int):
    """The polling partial: 204/304 when unchanged, 286 when the cluster is gone."""
    return live.poll(
        lambda: dashboards.utilization_etag(current_user, cluster_id),
        lambda etag: render_template(
            "clusters/_utilization.html",
            live=dashboards.utilization(current_user, cluster_id),
            live_version=etag,
        ),
        url_for("clusters.detail", cluster_id=cluster_id),
        gone="clusters/_gone.html",
    )


@bp.get("/<int:cluster_id>/engine")
def engine(cluster_id: int):
    """The engine section's poll: its health and nodes as the reconciler last saw them; 204/304
    when unchanged, 286 when the cluster is gone."""
    seen: dict[str, object] = {}

    def etag() -> str:
        seen["engine"] = dashboards.engine(current_user, cluster_id)
        return dashboards.engine_etag(cluster_id, seen["engine"])  # type: ignore[arg-type]

    return live.poll(
        etag,
        lambda version: render_template(
            "clusters/_engine.html",
            cluster_id=cluster_id,
            engine=seen["engine"],
            engine_version=version,
        ),
        url_for("clusters.detail", cluster_id=cluster_id),
        gone="clusters/_gone.html",
    )


@bp.post("/<int:cluster_id>/delete")
@login_required
def delete(cluster_id: int):
    try:
        deployments.delete_cluster(current_user, cluster_id)
    except Conflict as exc:
        flash(exc.message, "error")
        return redirect(url_for("clusters.detail", cluster_id=cluster_id))
    flash("Cluster deleted.", "success")
    return redirect(url_for("clusters.index"))


def _page_number(raw: str | None) -> int:
    """The 1-based page of a list; anything unreadable is page 1 (never an error page)."""
    return bounded_int(raw, 1, 1_000_000, max_digits=9) or 1


def _usage_chart(cluster_id: int, range_name: str | None) -> charts.UsageChart:
    chosen = charts.chosen_range(range_name)
    _, since, step = charts.RANGES[chosen]
    view = clusters.usage_view(current_user.organization_id, cluster_id, since, step)
    return charts.usage_chart(view, chosen)


@bp.get("/<int:cluster_id>/usage")
@login_required
def usage(cluster_id: int):
    """The resource trail partial alone (the chart's range links fetch it)."""
    return render_template(
        "clusters/_usage.html", usage=_usage_chart(cluster_id, request.args.get("range"))
    )

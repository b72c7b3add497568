"""Cluster pages: the list, the create form (custom kinds added with htmx), the detail page, its
live utilization partial, and delete.

Views stay thin: read the input, call one service function, render or redirect. Another
organization's cluster raises NotFound in the services, so it answers 404 exactly like an id
that does not exist.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

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
from app.extensions import login_manager
from app.services import clusters, dashboards, deployments, engines
from app.services.errors import Conflict, NotFound, ValidationError

# htmx stops polling when a poll is answered with this status.
STOP_POLLING = 286


@bp.get("/")
@login_required
def index():
    listing = dashboards.cluster_list(current_user, _page_number(request.args.get("page")))
    return render_template("clusters/index.html", listing=listing)


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
    cluster = dashboards.cluster_detail(current_user, cluster_id)
    return render_template(
        "clusters/detail.html",
        cluster=cluster,
        live=cluster.live,
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
    """The polling partial. A poll for a cluster that is gone (or not visible) gets 286."""
    polling = bool(request.headers.get("HX-Request"))
    if not current_user.is_authenticated:
        if polling:  # the session ended under an open dashboard: stop and go to login
            response = current_app.response_class("", STOP_POLLING)
            response.headers["HX-Redirect"] = url_for(
                "accounts.login", next=url_for("clusters.detail", cluster_id=cluster_id)
            )
            return response
        return login_manager.unauthorized()
    try:
        etag = dashboards.utilization_etag(current_user, cluster_id)
        if etag in request.if_none_match:
            # Nothing changed since this browser's last poll: no load, no render.
            return _revalidated(current_app.response_class(status=304), etag)
        live = dashboards.utilization(current_user, cluster_id)
    except NotFound:
        if not polling:
            raise
        return render_template("clusters/_gone.html"), STOP_POLLING
    return _revalidated(
        current_app.make_response(render_template("clusters/_utilization.html", live=live)), etag
    )


def _revalidated(response, etag: str):
    """Let the browser cache the partial but revalidate it on every poll (If-None-Match)."""
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


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

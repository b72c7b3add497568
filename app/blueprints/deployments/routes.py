"""Deployment pages: the organization-wide list, the deploy form and its what-if preview, the
deployment page, delete and delete-all, and the preemption notices shown on the next page.

Views stay thin: read the input, call one service function, render or redirect. Another
organization's deployment or cluster raises NotFound in the services, so it answers 404 exactly
like an id that does not exist.
"""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app.blueprints import live as live_polls
from app.blueprints.deployments import bp
from app.blueprints.deployments.forms import (
    DeployForm,
    FilterForm,
    cluster_choices,
    positive_int,
)
from app.services import accounts, dashboards, deployments
from app.services.errors import DomainError, NotFound

# htmx stops polling on this status (a partial whose deployment is gone).
STOP_POLLING = 286


@bp.app_context_processor
def preemption_notices() -> dict:
    """Flash the user's preemption notices on their next full page (not partials, not the API,
    not the error page of an unknown URL such as the browser's favicon request).

    One indexed query when there is nothing to say; flashed before base.html reads the
    flashes, so they appear on this very page.
    """
    if (
        has_request_context()
        and current_user.is_authenticated
        and not request.headers.get("HX-Request")
        and not request.path.startswith("/api/")
        and request.endpoint not in (None, "static")  # None: an unknown URL (a favicon)
    ):
        for notice in deployments.pop_notices(current_user):
            flash(notice, "warning")
    return {}


@bp.get("/")
@login_required
def index():
    live_version = dashboards.list_version(current_user)
    filters, listing, has_clusters = _listing()
    page = render_template(
        "deployments/index.html",
        listing=listing,
        filters=filters,
        has_clusters=has_clusters,
        live_version=live_version,
        estimates=deployments.start_estimates(current_user, listing.items),
    )
    return page, 400 if filters.problems else 200


@bp.get("/live")
def live_list():
    """The list's polling partial (the same filters): 204/304 when nothing changed."""
    return live_polls.poll(
        lambda: dashboards.list_version(current_user),
        _render_list,
        url_for("deployments.index", **request.args),
    )


def _render_list(etag: str) -> str:
    filters, listing, has_clusters = _listing()
    return render_template(
        "deployments/_list.html",
        listing=listing,
        filters=filters,
        has_clusters=has_clusters,
        live_version=etag,
        estimates=deployments.start_estimates(current_user, listing.items),
    )


def _listing():
    """The list's filters read from the query string, the page of deployments they select,
    and whether the organization has any cluster."""
    choices = deployments.cluster_choices(current_user)
    filters = FilterForm.read(request.args, choices, accounts.list_members(current_user))
    listing = deployments.list_deployments(
        current_user,
        filters.cluster_id_value,
        filters.status_value,
        filters.page,
        current_app.config["PAGE_SIZE"],
        search=filters.search_value,
        owner_id=filters.owner_value,
        sort=filters.sort,
        descending=filters.descending,
    )
    return filters, listing, bool(choices)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create():
    form, choices, selected = _deploy_form()
    if selected is None:
        return render_template("deployments/new.html", form=None, choices=choices)
    if form.validate_on_submit():
        try:
            result = _submit(form, selected.id)
        except NotFound:
            raise
        except DomainError as exc:
            form.place_errors(exc.fields, exc.message)
        else:
            flash(result.message, "success" if result.status == "running" else "warning")
            return redirect(url_for("deployments.detail", deployment_id=result.deployment.id))
    page = render_template("deployments/new.html", form=form, choices=choices, cluster=selected)
    return page, 422 if form.is_submitted() else 200


@bp.post("/preview")
@login_required
def preview():
    """The what-if partial: a dry run of the submission as typed so far (nothing is written)."""
    form, _choices, selected = _deploy_form()
    if selected is None:
        return render_template("deployments/_preview.html", hint="Choose a cluster first.")
    if form.is_blank():
        return render_template(
            "deployments/_preview.html",
            hint="Fill in an image and some resources to see whether it would start now.",
        )
    try:
        result = _submit(form, selected.id, dry_run=True)
    except NotFound:
        raise
    except DomainError as exc:
        return render_template("deployments/_preview.html", problem=exc)
    return render_template("deployments/_preview.html", result=result)


def _submit(form, cluster_id: int, dry_run: bool = False):
    """The deploy form's submission as typed: for real, or as the what-if preview's dry run."""
    return deployments.submit(
        current_user,
        cluster_id,
        form.image.data,
        form.name.data,
        form.priority_raw(),
        form.requests_raw(),
        dry_run=dry_run,
        ports=form.ports.data or None,
        env=form.env.data or None,
        command=form.command.data or None,
        preemption_policy=form.preemption_policy.data,
        max_run=form.max_run.data,
    )


@bp.get("/<int:deployment_id>")
@login_required
def detail(deployment_id: int):
    live_version = deployments.live_version(current_user, deployment_id)
    deployment = deployments.get(current_user, deployment_id)
    return render_template(
        "deployments/detail.html",
        deployment=deployment,
        live_version=live_version,
        can_delete=deployments.can_delete(current_user, deployment),
        estimate=deployments.start_estimates(current_user, [deployment]).get(deployment.id),
        events=deployments.timeline(current_user, deployment_id),
        logs=deployments.logs(current_user, deployment_id),
    )


# The live parts of the deployment page: each partial re-polls itself (hx-trigger "every"),
# and a deployment that is gone (deleted meanwhile) stops its polls with 286.


def _live_partial(deployment_id: int, render):
    if not current_user.is_authenticated:
        response = current_app.response_class("", STOP_POLLING)
        response.headers["HX-Redirect"] = url_for(
            "accounts.login", next=url_for("deployments.detail", deployment_id=deployment_id)
        )
        return response
    try:
        return render()
    except NotFound:
        return render_template("deployments/_gone.html"), STOP_POLLING


@bp.get("/<int:deployment_id>/runtime")
def runtime_partial(deployment_id: int):
    return _live_partial(
        deployment_id,
        lambda: render_template(
            "deployments/_runtime.html", deployment=deployments.get(current_user, deployment_id)
        ),
    )


@bp.get("/<int:deployment_id>/logs")
def logs_partial(deployment_id: int):
    return _live_partial(
        deployment_id,
        lambda: render_template(
            "deployments/_logs.html",
            deployment_id=deployment_id,
            logs=deployments.logs(current_user, deployment_id),
        ),
    )


@bp.get("/<int:deployment_id>/timeline")
def timeline_partial(deployment_id: int):
    return _live_partial(
        deployment_id,
        lambda: render_template(
            "deployments/_timeline.html",
            deployment_id=deployment_id,
            events=deployments.timeline(current_user, deployment_id),
        ),
    )


@bp.get("/<int:deployment_id>/live")
def live(deployment_id: int):
    """The deployment page's polling partial: 204/304 when unchanged, 286 when it is gone."""
    return live_polls.poll(
        lambda: deployments.live_version(current_user, deployment_id),
        lambda etag: _render_live(deployment_id, etag),
        url_for("deployments.detail", deployment_id=deployment_id),
        gone="deployments/_gone.html",
    )


def _render_live(deployment_id: int, etag: str) -> str:
    deployment = deployments.get(current_user, deployment_id)
    return render_template(
        "deployments/_live.html",
        deployment=deployment,
        live_version=etag,
        estimate=deployments.start_estimates(current_user, [deployment]).get(deployment.id),
    )


@bp.post("/<int:deployment_id>/delete")
@login_required
def delete(deployment_id: int):
    deleted = deployments.delete(current_user, deployment_id)
    flash(f"Deployment {deleted.name} deleted; its resources are free again.", "success")
    return redirect(url_for("clusters.detail", cluster_id=deleted.cluster_id))


@bp.route("/cluster/<int:cluster_id>/delete-all", methods=["GET", "POST"])
@login_required
def delete_all(cluster_id: int):
    """GET asks for confirmation (with the counts); POST deletes every deployment."""
    if request.method == "GET":
        summary = deployments.delete_all_summary(current_user, cluster_id)
        return render_template("deployments/delete_all.html", summary=summary)
    count = deployments.delete_all(current_user, cluster_id)
    noun = "deployment" if count == 1 else "deployments"
    flash(f"Deleted {count} {noun}.", "success")
    return redirect(url_for("clusters.detail", cluster_id=cluster_id))


def _deploy_form():
    """The deploy form for the chosen cluster: (form, every cluster, the chosen one or None).

    The cluster comes from the form (POST) or the query string (GET); when absent, the first
    cluster is chosen. A cluster id that is not one of the organization's answers 404.
    """
    choices = deployments.cluster_choices(current_user)
    raw = request.values.get("cluster_id", "")
    selected = None
    if raw.strip():
        wanted = positive_int(raw)
        if wanted is None:
            raise NotFound("No such cluster.")
        selected = deployments.deploy_target(current_user, wanted)
    elif choices:
        selected = deployments.deploy_target(current_user, choices[0].id)
    kinds = [r.kind for r in selected.resources] if selected else []
    form = DeployForm.with_kinds(
        kinds, formdata=request.form if request.method == "POST" else request.args or None
    )
    form.cluster_id.choices = cluster_choices(choices)
    if selected is not None:
        form.cluster_id.data = selected.id
    return form, choices, selected

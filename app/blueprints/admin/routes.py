"""Routes of the admin blueprint: members and roles, password reset links, invites, settings.

Owners and admins see members and invites and manage invites; only owners change roles,
deactivate or reactivate members, issue password reset links and edit the settings. The
service enforces all of it (Forbidden -> 403 page) and says what the viewer may do; refused
changes (the last owner, an invite redeemed meanwhile) come back as a flashed message. Every
POST redirects (POST/redirect/GET); a link made by a POST is shown once after the redirect.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.blueprints import links, once
from app.blueprints.accounts.forms import show_domain_error
from app.blueprints.admin import bp
from app.blueprints.admin.forms import (
    ROLE_CHOICES,
    InviteForm,
    QuotaForm,
    RoleForm,
    SettingsForm,
)
from app.services import accounts as accounts_service
from app.services import organizations, quotas
from app.services.errors import Conflict, DomainError, ValidationError

# Ids in paths: digits; the services answer 404 for an id no row can have (models.valid_id).
ID = "int"


@bp.before_request
@login_required
def require_login() -> None:
    """Every admin page needs a logged-in user; the service decides the role."""


def _back_to_members():
    # An owner who just demoted or deactivated themselves can no longer see the admin pages.
    if current_user.is_authenticated and accounts_service.can_see_admin(current_user):
        return redirect(url_for("admin.members"))
    return redirect(url_for("accounts.organization"))


@bp.get("/")
def index():
    return redirect(url_for("admin.members"))


@bp.get("/members")
def members():
    overview = accounts_service.members_admin(current_user)
    return render_template(
        "admin/members.html",
        organization=overview,
        roles=ROLE_CHOICES,
        reset_link=once.take("reset"),
    )


@bp.post(f"/members/<{ID}:user_id>/role")
def change_role(user_id: int):
    form = RoleForm()
    try:
        member = accounts_service.change_role(current_user, user_id, form.role.data or "")
    except (Conflict, ValidationError) as exc:
        flash(exc.message, "error")
    else:
        flash(f"{member.display_name} is now {member.role}.", "success")
    return _back_to_members()


@bp.post(f"/members/<{ID}:user_id>/deactivate")
def deactivate(user_id: int):
    try:
        member, ended = accounts_service.deactivate(current_user, user_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        done = f"{member.display_name} was deactivated and logged out everywhere."
        if ended.tokens:
            done += f" {ended.tokens} API token{'s' * (ended.tokens > 1)} revoked."
        flash(done, "success")
    return _back_to_members()


@bp.post(f"/members/<{ID}:user_id>/reactivate")
def reactivate(user_id: int):
    member = accounts_service.reactivate(current_user, user_id)
    flash(f"{member.display_name} can log in again (their old API tokens stay revoked).", "success")
    return _back_to_members()


@bp.post(f"/members/<{ID}:user_id>/password-reset")
def password_reset(user_id: int):
    """A single-use reset link for a member, shown once on the members page."""
    try:
        reset, code = accounts_service.create_password_reset(current_user, user_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        once.keep(
            "reset",
            link=links.password_reset_link(code),
            name=reset.user.display_name,
            expires_at=reset.expires_at.isoformat(),
        )
    return _back_to_members()


def _roles_for_invites() -> list[tuple[str, str]]:
    return [
        (v, label) for v, label in ROLE_CHOICES if accounts_service.can_invite_as(current_user, v)
    ]


@bp.route("/invites", methods=["GET", "POST"])
def invites():
    """The invites list and the form that makes one: a POST redirects here, showing the new
    link once, so a reload never makes another invite."""
    form = InviteForm(roles=_roles_for_invites())
    if form.validate_on_submit():
        try:
            invite, code = accounts_service.create_invite(
                current_user, form.label.data, form.role.data
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            once.keep(
                "invite",
                link=links.invite_link(code),
                label=invite.label,
                role=invite.role,
                expires_at=invite.expires_at.isoformat(),
            )
            return redirect(url_for("admin.invites"))
    page = render_template(
        "admin/invites.html",
        form=form,
        invites=accounts_service.list_invites(current_user),
        new_invite=None if form.is_submitted() else once.take("invite"),
    )
    return page, 422 if form.is_submitted() else 200


@bp.post(f"/invites/<{ID}:invite_id>/revoke")
def revoke_invite(invite_id: int):
    return _change_invite(
        accounts_service.revoke_invite,
        invite_id,
        "The invite was revoked: its link no longer works.",
    )


@bp.post(f"/invites/<{ID}:invite_id>/reopen")
def reopen_invite(invite_id: int):
    return _change_invite(
        accounts_service.reopen_invite,
        invite_id,
        "The invite was re-opened with a fresh expiry: the same link works again.",
    )


def _change_invite(change, invite_id: int, done: str):
    """Apply a service change to one invite; a refusal (Conflict) is flashed, not an error page."""
    try:
        change(current_user, invite_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(done, "success")
    return redirect(url_for("admin.invites"))


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    current = accounts_service.organization_settings(current_user)
    form = SettingsForm(
        data={
            "name": current.name,
            "deployment_quota": current.deployment_quota,
            "members_can_create_clusters": current.members_can_create_clusters,
            "member_max_priority": current.member_max_priority,
            "admin_max_priority": current.admin_max_priority,
        }
    )
    if form.validate_on_submit():
        try:
            saved = organizations.update_settings(
                current_user,
                form.name.data,
                form.deployment_quota.data,
                form.members_can_create_clusters.data,
                form.member_max_priority.data,
                form.admin_max_priority.data,
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            flash(saved.message, "warning" if saved.quota_reached else "success")
            return redirect(url_for("admin.settings"))
    page = render_template(
        "admin/settings.html", form=form, quota_maximum=accounts_service.quota_maximum()
    )
    return page, 422 if form.is_submitted() else 200


@bp.route("/quotas", methods=["GET", "POST"])
def quotas_page():
    """Resource quotas and the use against them (owners); add one with the form."""
    overview = organizations.quota_overview(current_user)
    choices = organizations.quota_choices(current_user)
    form = QuotaForm()
    form.user_id.choices = [("", "(none)"), *choices.members]
    form.cluster_id.choices = [("", "Every cluster"), *choices.clusters]
    if form.validate_on_submit():
        try:
            quotas.create(
                current_user,
                {
                    "scope": form.scope.data,
                    "user_id": form.user_id.data or None,
                    "cluster_id": form.cluster_id.data or None,
                    "kind": form.kind.data,
                    "amount": form.amount.data,
                    "min_priority": form.min_priority.data,
                    "max_priority": form.max_priority.data,
                },
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            flash("Quota added.", "success")
            return redirect(url_for("admin.quotas_page"))
    page = render_template("admin/quotas.html", form=form, overview=overview)
    return page, 422 if form.is_submitted() else 200


@bp.post(f"/quotas/<{ID}:quota_id>/delete")
def delete_quota(quota_id: int):
    quotas.delete(current_user, quota_id)
    flash("Quota removed.", "success")
    return redirect(url_for("admin.quotas_page"))

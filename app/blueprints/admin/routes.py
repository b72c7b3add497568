"""Routes of the admin blueprint: members and roles, invites, organization settings.

Owners and admins see members and invites and manage invites; only owners change roles,
deactivate or reactivate members and edit the settings. The service enforces all of it
(Forbidden -> 403 page); refused changes (the last owner) come back as a flashed message.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.blueprints import links
from app.blueprints.accounts.forms import show_domain_error
from app.blueprints.admin import bp
from app.blueprints.admin.forms import ROLE_CHOICES, RoleForm, SettingsForm
from app.services import accounts as accounts_service
from app.services.errors import Conflict, DomainError, ValidationError


@bp.before_request
@login_required
def require_login() -> None:
    """Every admin page needs a logged-in user; the service decides the role."""


def _back_to_members():
    # An owner who just demoted or deactivated themselves can no longer see the admin pages.
    if current_user.is_authenticated and current_user.role in ("owner", "admin"):
        return redirect(url_for("admin.members"))
    return redirect(url_for("accounts.organization"))


@bp.get("/")
def index():
    return redirect(url_for("admin.members"))


@bp.get("/members")
def members():
    overview = accounts_service.members_admin(current_user)
    return render_template("admin/members.html", organization=overview, roles=ROLE_CHOICES)


@bp.post("/members/<int:user_id>/role")
def change_role(user_id: int):
    form = RoleForm()
    try:
        member = accounts_service.change_role(current_user, user_id, form.role.data or "")
    except (Conflict, ValidationError) as exc:
        flash(exc.message, "error")
    else:
        flash(f"{member.display_name} is now {member.role}.", "success")
    return _back_to_members()


@bp.post("/members/<int:user_id>/deactivate")
def deactivate(user_id: int):
    try:
        member = accounts_service.set_active(current_user, user_id, False)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(f"{member.display_name} was deactivated and logged out everywhere.", "success")
    return _back_to_members()


@bp.post("/members/<int:user_id>/reactivate")
def reactivate(user_id: int):
    member = accounts_service.set_active(current_user, user_id, True)
    flash(f"{member.display_name} can log in again.", "success")
    return _back_to_members()


@bp.get("/invites")
def invites():
    return render_template(
        "admin/invites.html", invites=accounts_service.list_invites(current_user)
    )


@bp.post("/invites")
def create_invite():
    """Shows the new link once, on this response: the code itself is never stored."""
    invite, code = accounts_service.create_invite(current_user)
    return render_template(
        "admin/invites.html",
        invites=accounts_service.list_invites(current_user),
        new_invite_link=links.invite_link(code),
        new_invite_expires_at=invite.expires_at,
    ), 201


@bp.post("/invites/<int:invite_id>/revoke")
def revoke_invite(invite_id: int):
    return _change_invite(
        accounts_service.revoke_invite,
        invite_id,
        "The invite was revoked: its link no longer works.",
    )


@bp.post("/invites/<int:invite_id>/reopen")
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
    form = SettingsForm(data={"name": current.name, "deployment_quota": current.deployment_quota})
    if form.validate_on_submit():
        try:
            accounts_service.update_settings(
                current_user, form.name.data, form.deployment_quota.data
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            flash("Organization settings saved.", "success")
            return redirect(url_for("admin.settings"))
    return render_template("admin/settings.html", form=form), 422 if form.is_submitted() else 200

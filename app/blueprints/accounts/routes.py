"""Routes of the accounts blueprint: sign-up, login, logout, profile, organization, invite links.

Thin views: validate with a form, call the accounts service, render or redirect. Logins are
rate-limited per client address and per username (failed attempts only); when a limit is hit
the login page itself says so, with status 429.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from app.blueprints import limits
from app.blueprints.accounts import bp
from app.blueprints.accounts.forms import (
    InviteSignupForm,
    LoginForm,
    SignupForm,
    local_path,
    show_domain_error,
)
from app.blueprints.main.errors import error_response
from app.extensions import limiter
from app.services import accounts as accounts_service
from app.services.errors import DomainError, Gone, NotFound, Unauthorized

TOO_MANY_LOGINS = "Too many login attempts. Please wait a minute and try again."


def _start_session(user) -> None:
    # A fresh session on every login: nothing from the anonymous session (or a planted
    # session) survives into the authenticated one.
    session.clear()
    login_user(user)


def _login_client_key() -> str:
    return f"login-client:{get_remote_address()}"


def _login_username_key() -> str:
    return "login-user:" + (request.form.get("username") or "").strip().lower()[:64]


def _login_failed(response) -> bool:
    # Only failed attempts count: a successful login answers with a redirect.
    return response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_CLIENT"],
    key_func=_login_client_key,
    methods=["POST"],
    deduct_when=_login_failed,
)
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_USERNAME"],
    key_func=_login_username_key,
    methods=["POST"],
    deduct_when=_login_failed,
)
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated and not form.is_submitted():
        return redirect(local_path(form.next.data) or url_for("main.index"))
    if not form.validate_on_submit():
        return render_template(
            "accounts/login.html", form=form
        ), 422 if form.is_submitted() else 200
    try:
        user = accounts_service.authenticate(form.username.data, form.password.data)
    except Unauthorized as exc:
        form.form_errors.append(exc.message)
        return render_template("accounts/login.html", form=form), 401
    _start_session(user)
    flash(f"Welcome back, {user.display_name}.", "success")
    return redirect(local_path(form.next.data) or url_for("main.index"))


@bp.errorhandler(429)
def too_many_attempts(exc):
    if request.endpoint != "accounts.login":
        return error_response(429, "Too many attempts. Please wait a minute and try again.")
    form = LoginForm()
    form.form_errors.append(TOO_MANY_LOGINS)
    return render_template("accounts/login.html", form=form), 429


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You have been logged out.", "info")
    return redirect(url_for("accounts.login"))


@bp.route("/signup", methods=["GET", "POST"])
@limits.account_creation
def signup():
    if current_user.is_authenticated:
        flash("You already belong to an organization. Log out to create another one.", "info")
        return redirect(url_for("accounts.organization"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = accounts_service.signup(
                form.username.data,
                form.password.data,
                form.display_name.data,
                form.organization_name.data,
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            _start_session(user)
            flash(
                f"Welcome to Kargo, {user.display_name}. Invite your team from Admin → Invites.",
                "success",
            )
            return redirect(url_for("accounts.organization"))
    return render_template("accounts/signup.html", form=form), 422 if form.is_submitted() else 200


@bp.get("/profile")
@login_required
def profile():
    return render_template("accounts/profile.html", profile=accounts_service.profile(current_user))


@bp.get("/organization")
@login_required
def organization():
    overview = accounts_service.organization_overview(current_user)
    return render_template("accounts/organization.html", organization=overview)


def _invite_unavailable(state: str):
    problem = accounts_service.INVITE_PROBLEMS[state]
    return render_template(
        "accounts/invite_unavailable.html", state=state, problem=problem
    ), problem.status


@bp.route("/invite/<path:code>", methods=["GET", "POST"])
@limits.account_creation
def invite(code: str):
    """Opening the link consumes nothing; a valid sign-up through it uses it up."""
    state, invited_to = accounts_service.invite_status(code)
    if state != "active":
        return _invite_unavailable(state)
    form = InviteSignupForm()
    if form.validate_on_submit():
        try:
            user = accounts_service.redeem_invite(
                code, form.username.data, form.password.data, form.display_name.data
            )
        except (NotFound, Gone) as exc:
            return _invite_unavailable(exc.code.removeprefix("invite_"))
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            _start_session(user)
            flash(f"Welcome to {invited_to.name}, {user.display_name}.", "success")
            return redirect(url_for("accounts.organization"))
    page = render_template("accounts/invite.html", form=form, organization=invited_to, code=code)
    return page, 422 if form.is_submitted() else 200

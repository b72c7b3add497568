"""Routes of the accounts blueprint: sign-up, login, logout, the profile (display name,
password, API tokens), the organization page, invite links and password reset links.

Thin views: validate with a form, call the accounts service, render or redirect. Logins are
rate-limited (failed attempts only; see `app.blueprints.limits`); when a limit is hit the
login page itself says so, with status 429. Every POST that changes something redirects
(POST/redirect/GET); a secret made by a POST is shown once on the page it redirects to.
"""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from app.blueprints import limits, once
from app.blueprints.accounts import bp
from app.blueprints.accounts.forms import (
    InviteSignupForm,
    LoginForm,
    PasswordForm,
    ProfileForm,
    ResetPasswordForm,
    SignupForm,
    TokenForm,
    local_path,
    show_domain_error,
)
from app.blueprints.main.errors import error_response, with_retry_after
from app.services import accounts as accounts_service
from app.services import notifications
from app.services.errors import DomainError, Gone, NotFound, Unauthorized, ValidationError

TOO_MANY_LOGINS = "Too many login attempts. Please wait a minute and try again."
TOKEN_ID = "int"  # the service answers 404 for an id no row can have


def _start_session(user) -> None:
    # A fresh session on every login: nothing from the anonymous session (or a planted
    # session) survives into the authenticated one. The cookie carries only the key of the
    # server-side session row.
    session.clear()
    accounts_service.open_session(user)
    login_user(user)


@bp.route("/login", methods=["GET", "POST"])
@limits.login
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
    page = make_response(render_template("accounts/login.html", form=form), 429)
    return with_retry_after(page, exc)


@bp.post("/logout")
def logout():
    """Ends the server-side session, so a copy of the cookie opens nothing afterwards."""
    if current_user.is_authenticated:
        accounts_service.end_session(current_user)
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


# --- The profile ------------------------------------------------------------------------------


def _profile_page(profile_form=None, password_form=None, status: int = 200, **mail):
    return render_template(
        "accounts/profile.html",
        profile=accounts_service.profile(current_user),
        profile_form=profile_form or ProfileForm(display_name=current_user.display_name),
        password_form=password_form or PasswordForm(),
        mail=notifications.mail_settings(current_user),
        **mail,
    ), status


@bp.get("/profile")
@login_required
def profile():
    return _profile_page()


@bp.post("/profile")
@login_required
def update_profile():
    form = ProfileForm()
    if form.validate_on_submit():
        try:
            user = accounts_service.update_profile(current_user, form.display_name.data)
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            flash(f"Your display name is now {user.display_name}.", "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(profile_form=form, status=422)


@bp.post("/profile/mail")
@login_required
def mail_settings():
    """Where and which mails about one's deployments (CSRF checked by CSRFProtect)."""
    form = request.form
    try:
        notifications.update_mail_settings(
            current_user,
            form.get("email", ""),
            form.get("on_preempted") == "1",
            form.get("on_started") == "1",
            form.get("on_failed") == "1",
        )
    except ValidationError as exc:
        return _profile_page(status=422, mail_error=exc.message, mail_email=form.get("email"))
    flash("Mail settings saved.", "success")
    return redirect(url_for("accounts.profile") + "#mail-settings")


@bp.post("/profile/password")
@login_required
@limits.password_change
def change_password():
    form = PasswordForm()
    form.username = current_user.username
    if form.validate_on_submit():
        try:
            ended = accounts_service.change_password(
                current_user, form.current_password.data, form.password.data
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            done = "Your password was changed."
            if ended.sessions or ended.tokens:
                done += f" Ended {ended.describe()}; this session stays logged in."
            flash(done, "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(password_form=form, status=422)


@bp.route("/profile/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    """Personal API tokens: the list, and the form that creates one (shown once, then PRG)."""
    form = TokenForm(longest=current_app.config["API_TOKEN_MAX_TTL_DAYS"])
    if form.validate_on_submit():
        try:
            token, secret = accounts_service.create_token(
                current_user, form.name.data, form.expires_in_days.data
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            once.keep("token", name=token.name, secret=secret)
            return redirect(url_for("accounts.tokens"))
    page = render_template(
        "accounts/tokens.html",
        form=form,
        tokens=accounts_service.list_tokens(current_user),
        new_token=None if form.is_submitted() else once.take("token"),
    )
    return page, 422 if form.is_submitted() else 200


@bp.post(f"/profile/tokens/<{TOKEN_ID}:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = accounts_service.revoke_api_token(current_user, token_id)
    flash(f"The token {token.name} was revoked: it no longer works.", "success")
    return redirect(url_for("accounts.tokens"))


@bp.get("/organization")
@login_required
def organization():
    overview = accounts_service.organization_overview(current_user)
    return render_template("accounts/organization.html", organization=overview)


# --- Links that work once: invites and password resets ---------------------------------------


def _link_unavailable(problems, state: str):
    problem = problems[state]
    return render_template(
        "accounts/invite_unavailable.html", state=state, problem=problem
    ), problem.status


@bp.route("/invite/<path:code>", methods=["GET", "POST"])
@limits.account_creation
def invite(code: str):
    """Opening the link consumes nothing; a valid sign-up through it uses it up."""
    state, invited_to = accounts_service.invite_status(code)
    if state != "active":
        return _link_unavailable(accounts_service.INVITE_PROBLEMS, state)
    form = InviteSignupForm()
    if form.validate_on_submit():
        try:
            user = accounts_service.redeem_invite(
                code, form.username.data, form.password.data, form.display_name.data
            )
        except (NotFound, Gone) as exc:
            return _link_unavailable(
                accounts_service.INVITE_PROBLEMS, exc.code.removeprefix("invite_")
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            _start_session(user)
            flash(f"Welcome to {invited_to.name}, {user.display_name}.", "success")
            return redirect(url_for("accounts.organization"))
    page = render_template("accounts/invite.html", form=form, organization=invited_to, code=code)
    return page, 422 if form.is_submitted() else 200


@bp.route("/reset/<path:code>", methods=["GET", "POST"])
def reset_password(code: str):
    """A password reset link from an owner: choose a new password, once, and be logged in."""
    state, user = accounts_service.password_reset_status(code)
    if state != "active":
        return _link_unavailable(accounts_service.RESET_PROBLEMS, state)
    form = ResetPasswordForm()
    form.username = user.username
    if form.validate_on_submit():
        try:
            user = accounts_service.reset_password(code, form.password.data)
        except (NotFound, Gone) as exc:
            return _link_unavailable(
                accounts_service.RESET_PROBLEMS, exc.code.removeprefix("reset_")
            )
        except DomainError as exc:
            show_domain_error(form, exc)
        else:
            _start_session(user)
            flash("Your password was changed and every other session ended.", "success")
            return redirect(url_for("main.index"))
    page = render_template("accounts/reset.html", form=form, user=user, code=code)
    return page, 422 if form.is_submitted() else 200

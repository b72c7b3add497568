"""Sign-up, login, profile, API tokens, organization, invite and password reset pages."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)

from app.blueprints.accounts import routes  # noqa: E402,F401
from app.extensions import login_manager  # noqa: E402
from app.services import accounts as accounts_service  # noqa: E402

login_manager.login_view = "accounts.login"
login_manager.login_message = "Please log in to continue."
login_manager.login_message_category = "info"
# A session presented from another address or browser than the one that logged in is dropped.
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(session_key: str):
    """The cookie holds the key of a server-side session; an ended session loads nobody."""
    return accounts_service.load_session_user(session_key)

"""Routes of the accounts blueprint. SCAFFOLD: replaced by the real pages."""

from app.blueprints.accounts import bp


@bp.route("/login", methods=["GET", "POST"])
def login():
    return "scaffold"


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    return "scaffold"


@bp.post("/logout")
def logout():
    return "scaffold"


@bp.get("/profile")
def profile():
    return "scaffold"


@bp.get("/organization")
def organization():
    return "scaffold"

"""Routes of the admin blueprint. SCAFFOLD: replaced by the real pages."""

from app.blueprints.admin import bp


@bp.get("/members")
def members():
    return "scaffold"

"""Routes of the clusters blueprint. SCAFFOLD: replaced by the real pages."""

from app.blueprints.clusters import bp


@bp.get("/")
def index():
    return "scaffold"

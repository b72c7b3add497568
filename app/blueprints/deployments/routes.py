"""Routes of the deployments blueprint. SCAFFOLD: replaced by the real pages."""

from app.blueprints.deployments import bp


@bp.get("/")
def index():
    return "scaffold"

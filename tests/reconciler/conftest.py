"""What the reconciler tests share: an owner and a cluster on the engine "sim" (each test file
declares that engine, with the simulated driver, in its own `app_config`)."""

from __future__ import annotations

import pytest

from app.services import clusters
from tests.factories import make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner")


@pytest.fixture
def cluster(owner):
    return clusters.create_cluster(owner, "sim", {}, 10, engine="sim")

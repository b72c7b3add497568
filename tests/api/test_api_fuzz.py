"""Property-based fuzzing of the write endpoints' request bodies (Hypothesis).

For any JSON value, and for bodies of the right outline filled with arbitrary values, the
API never answers 5xx, and an error answer leaves every table exactly as it was.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.extensions import db as _db
from app.models import ClusterResource
from tests.factories import make_cluster

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", " 1", "0.5", "500m", "2Gi", "-1", "1e9", "cpu", "\u0000", "\ud800"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
kinds = st.sampled_from(["cpu", "gpu", "ram", "tpu", "", "CPU", "x y", "a" * 40]) | st.text(
    max_size=6
)
resources = st.dictionaries(kinds, scalars | json_values, max_size=4) | json_values


def mostly(good, bad):
    """`good` four times in five, `bad` otherwise (0, Hypothesis's favourite, picks good)."""
    return st.integers(0, 4).flatmap(lambda dice: bad if dice == 4 else good)


def outline(**fields):
    """Objects with the expected keys (each missing one time in ten) and drawn values."""

    def field(strategy):
        return st.tuples(st.integers(0, 9), strategy)

    def build(drawn):
        return {key: value for key, (dice, value) in drawn.items() if dice != 9}

    return st.fixed_dictionaries({key: field(value) for key, value in fields.items()}).map(build)


# Values of the right JSON type, mostly plausible, so that bodies get past the shape check and
# exercise the services' validation and the scheduler too.
def plausible(*examples: str):
    return mostly(st.sampled_from(examples), st.text(max_size=24))


words = plausible("ada", "grace", "Ada L", "a long enough secret", "Analytical Engines")
names = plausible("prod", "gpu-pool", "web", "a")
quantities = st.sampled_from([1, 2, 0.5, "1", " 2", "500m", "1Gi", "0", "-1", "1e3", 10**13])
typed_resources = st.dictionaries(
    mostly(st.sampled_from(["cpu", "gpu", "ram", "tpu"]), kinds), quantities, max_size=4
)


def row_counts() -> dict[str, int]:
    return {
        table.name: _db.session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in _db.metadata.sorted_tables
    } | {"used": _db.session.scalar(sa.select(sa.func.sum(ClusterResource.used)))}


def send(api, path, body, token=None):
    before = row_counts()
    data = json.dumps(body)  # NaN and Infinity become the non-JSON literals we must refuse
    response = api.request(
        "PUT",
        path,
        data=data.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        token=token,
    )
    assert response.status_code < 500, response.data
    event(f"status {response.status_code}")  # --hypothesis-show-statistics shows the mix
    _db.session.rollback()
    if response.status_code >= 400:
        assert row_counts() == before, (response.status_code, response.get_json())
    return response


@FUZZ
@given(
    body=mostly(
        outline(
            user=mostly(outline(username=words, password=words, display_name=words), json_values),
            organization=mostly(outline(name=words), json_values),
        ),
        json_values,
    )
)
def test_fuzz_user_create(api, body):
    send(api, "/user/create/", body)


@FUZZ
@given(
    body=json_values | outline(cluster_name=scalars, resource=resources, max_deployments=scalars)
)
def test_fuzz_cluster_create(api, owner, body):
    send(api, "/cluster/", body, owner.token)


@pytest.fixture
def small_cluster(owner):
    """One cluster shared by every example of a test (fixtures are not reset between them)."""
    return make_cluster(owner.org, resources={"cpu": 2000, "gpu": 1, "ram": 2048})


@FUZZ
@given(data=st.data())
def test_fuzz_deployment_submit(api, owner, small_cluster, data):
    cluster = small_cluster
    cluster_ids = st.sampled_from([cluster.id] * 6 + [cluster.id + 1, 0, -1, 2**31, 2**63])
    body = data.draw(
        mostly(
            outline(
                cluster_id=mostly(cluster_ids, scalars),
                image=mostly(
                    st.sampled_from(["nginx", "nginx:1.25", "a/b:c", "UPPER", ""]), scalars
                ),
                name=mostly(names | st.none(), scalars),
                priority=mostly(st.sampled_from(["low", "high", 0, 1000, 1001, -1, " 7"]), scalars),
                resource=mostly(typed_resources, resources),
            ),
            json_values,
        )
    )
    send(api, "/deployment/", body, owner.token)


@FUZZ
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/json; charset=latin-1",
        ]
    ),
)
def test_fuzz_raw_bytes(api, owner, raw, content_type):
    before = row_counts()
    response = api.request(
        "PUT", "/cluster/", data=raw, content_type=content_type, token=owner.token
    )
    assert response.status_code < 500
    if response.status_code >= 400:
        assert row_counts() == before

"""The reconciler's rules without Docker: an engine declared with the simulated driver.

Leases (one reconciler per cluster), capacity changes through the scheduler (a cut evicts the
lowest priority, a rise admits queued work), an engine that goes away and returns, orphans
with this install's labels removed, and the engine configuration's errors.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import ClusterRuntime, Deployment, Event
from app.reconciler import Reconciler
from app.runtime import engines as engine_config
from app.runtime.base import WorkloadSpec
from app.services import clusters, deployments, engines, reconcile
from app.services.errors import ValidationError
from tests.reconciler.conftest import run, submit

SIM = {"driver": "simulated", "capacity": {"cpu": "4", "ram": "4"}}


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": SIM},
        "RECONCILER_LEASE_SECONDS": 30,
        "RUNTIME_INSTALL_ID": "unit",
    }


@pytest.fixture
def reconciler(app):
    return Reconciler(app, holder="the-test")


def runtime_status(deployment_id):
    view = engines.views_for([deployment_id]).get(deployment_id)
    return None if view is None else view.status


def test_a_pass_starts_what_runs_and_stops_what_left(app, reconciler, owner, cluster, db):
    web = submit(owner, cluster, "web", 1)
    reports = run(reconciler)
    assert reports[0].started == [web.id]
    assert runtime_status(web.id) == "running"
    assert len(engines.driver("sim").observe(cluster.id)) == 1
    deployments.delete(owner, web.id)
    reports = run(reconciler)
    assert len(reports[0].stopped) == 1
    assert engines.driver("sim").observe(cluster.id) == []


def test_orphans_with_this_install_label_are_removed(app, reconciler, owner, cluster):
    driver = engines.driver("sim")
    spec = WorkloadSpec(999_999, cluster.id, "ghost", "nginx:1.27", "1", {"cpu": 100})
    driver.start(spec)  # a container of a deployment the database never knew
    reports = run(reconciler)
    assert len(reports[0].stopped) == 1
    assert driver.observe(cluster.id) == []


def test_two_reconcilers_never_act_on_one_cluster(app, owner, cluster):
    submit(owner, cluster, "web", 1)
    first, second = Reconciler(app, holder="first"), Reconciler(app, holder="second")
    assert run(first)[0].skipped is False
    assert run(second)[0].skipped is True
    with app.app_context():
        reconcile.release_leases("first")
    assert run(second)[0].skipped is False
    assert run(first)[0].skipped is True


def test_an_engine_capacity_cut_evicts_through_the_scheduler_and_a_rise_admits(
    app, reconciler, owner, cluster, db
):
    low = submit(owner, cluster, "low", 2, priority="low")
    high = submit(owner, cluster, "high", 2, priority="high")
    queued = submit(owner, cluster, "queued", 3, priority="normal")
    assert queued.status == "pending"
    run(reconciler)
    driver = engines.driver("sim")
    driver.amounts["cpu"] = 3000  # the engine lost a core
    report = run(reconciler)[0]
    assert report.capacity_changed
    db.session.rollback()
    statuses = dict(db.session.execute(sa.select(Deployment.name, Deployment.status)).all())
    assert statuses == {"low": "pending", "high": "running", "queued": "pending"}
    assert clusters.snapshot(cluster.id, owner.organization_id).capacity["cpu"] == 3000
    actions = set(db.session.scalars(sa.select(Event.action)))
    assert {"cluster.capacity_changed", "deployment.evicted"} <= actions
    assert runtime_status(low.id) == "stopped"
    assert runtime_status(high.id) == "running"

    driver.amounts["cpu"] = 8000  # more than the operator's ceiling of 4: the ceiling holds
    run(reconciler)
    db.session.rollback()
    assert clusters.snapshot(cluster.id, owner.organization_id).capacity["cpu"] == 4000
    statuses = dict(db.session.execute(sa.select(Deployment.name, Deployment.status)).all())
    assert statuses["low"] == "running" or statuses["queued"] == "running"


def test_an_engine_that_is_down_is_marked_and_recovers(app, reconciler, owner, cluster, db):
    web = submit(owner, cluster, "web", 1)
    driver = engines.driver("sim")
    driver.down = True
    report = run(reconciler)[0]
    assert report.reachable is False
    db.session.rollback()
    row = db.session.get(ClusterRuntime, cluster.id)
    assert row.engine_state == "unreachable"
    assert runtime_status(web.id) is None
    driver.down = False
    run(reconciler)
    db.session.rollback()
    assert db.session.get(ClusterRuntime, cluster.id, populate_existing=True).engine_state == "ok"
    assert runtime_status(web.id) == "running"
    actions = list(db.session.scalars(sa.select(Event.action).order_by(Event.id)))
    assert actions.count("cluster.engine_unreachable") == 1
    assert actions.count("cluster.engine_reachable") == 1


def test_one_command_pass(runner, owner, cluster):
    submit(owner, cluster, "web", 1)
    result = runner.invoke(args=["kargo", "reconcile", "--once"])
    assert result.exit_code == 0, result.output
    assert f"cluster {cluster.id}: started 1, stopped 0" in result.output


def test_a_simulated_cluster_is_never_reconciled(app, reconciler, owner):
    plain = clusters.create_cluster(owner, "plain", {"cpu": "2"}, 10)
    deployments.submit(owner, plain.id, "nginx:1.27", requests_raw={"cpu": 1})
    assert run(reconciler) == []


def test_engine_clusters_need_cpu_and_ram_requests(app, owner, cluster):
    with pytest.raises(ValidationError) as caught:
        deployments.submit(owner, cluster.id, "nginx:1.27", requests_raw={"cpu": 1})
    assert "resource.ram" in caught.value.fields


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        ({"Bad Name": SIM}, "engine name"),
        ({"x": {"driver": "kubernetes"}}, "driver must be one of"),
        ({"x": {"driver": "docker"}}, "endpoint must be"),
        (
            {"x": {"driver": "docker", "endpoint": "unix:///s", "organizations": "some"}},
            "organizations",
        ),
        ({"x": {"driver": "docker", "endpoint": "unix:///s", "tls_ca": "/ca.pem"}}, "tls_cert"),
        ({"x": {"driver": "simulated", "capacity": {"cpu": "lots"}}}, "capacity cpu"),
        ({"x": {"driver": "simulated", "colour": "blue"}}, "unknown setting"),
        (
            {"x": {"driver": "simulated", "registries": {"r.example.com": {"username": 1}}}},
            "registries",
        ),
    ],
)
def test_engine_configuration_errors_say_where(tables, words):
    with pytest.raises(engine_config.EngineConfigError) as caught:
        engine_config.parse(tables)
    assert words in str(caught.value)


def test_engines_load_from_a_toml_file(tmp_path):
    path = tmp_path / "engines.toml"
    path.write_text(
        '[engines.local]\ndriver = "docker"\nendpoint = "unix:///var/run/docker.sock"\n'
        "organizations = [3]\n"
        '[engines.local.registries."registry.example.com"]\nusername = "u"\npassword = "p"\n'
    )
    loaded = engine_config.load({}, str(path))
    local = loaded["local"]
    assert local.allows(3) and not local.allows(4)
    assert local.registry_auth("registry.example.com/team/app:1") == {
        "username": "u",
        "password": "p",
    }
    assert local.registry_auth("nginx:1.27") is None
    with pytest.raises(engine_config.EngineConfigError):
        engine_config.load({}, str(tmp_path / "missing.toml"))


def test_a_pass_finishes_deployments_past_their_maximum_run_time(
    app, reconciler, owner, cluster, db
):
    from datetime import timedelta

    from app.models import utcnow

    short = deployments.submit(
        owner,
        cluster.id,
        "nginx:1.27",
        name="short",
        max_run="1",
        requests_raw={"cpu": 1, "ram": "64Mi"},
    ).deployment
    run(reconciler)
    assert runtime_status(short.id) == "running"
    db.session.execute(
        sa.update(Deployment)
        .where(Deployment.id == short.id)
        .values(started_at=utcnow() - timedelta(minutes=2))
    )
    db.session.commit()
    run(reconciler)  # expires it, then stops its workload in the same pass
    assert db.session.get(Deployment, short.id) is None
    assert engines.driver("sim").observe(cluster.id) == []

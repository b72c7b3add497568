"""A real browser creates a cluster with a custom resource kind through the form, then watches
the utilization partial refresh on its own when usage changes in the database."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import Cluster, ClusterResource
from tests.browser.session import sign_in
from tests.factories import make_user


def test_create_a_cluster_with_a_custom_kind_and_watch_it_live(app, live_server, page):
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.location.get("url", "").endswith("/favicon.ico")
            and problems.append(message.text)
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    user = make_user(display_name="Ada")
    sign_in(page, live_server, user)

    page.goto(live_server.path("/clusters/"))
    page.get_by_role("button", name="New cluster").click()  # a link styled as a button
    page.get_by_label("Name").fill("ml-pool")
    page.get_by_label("CPU (cores)").fill("8")
    page.get_by_label("RAM (GiB)").fill("512Mi")

    # Two rows added without a reload; the first is removed again.
    page.evaluate("window.sameDocument = true")
    add = page.get_by_role("button", name="Add resource kind")
    add.click()
    expect(page.locator("#custom-0-kind")).to_be_visible()
    add = page.get_by_role("button", name="Add resource kind")
    add.click()
    expect(page.locator("#custom-1-kind")).to_be_visible()
    page.locator("#custom-0-kind").fill("scratch")
    page.locator("[data-resource-row]").first.get_by_role("button", name="Remove").click()
    expect(page.locator("#custom-0-kind")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True
    page.locator("#custom-1-kind").fill("tpu")
    page.locator("#custom-1-amount").fill("4")
    page.get_by_role("button", name="Create cluster").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("ml-pool")
    expect(page.get_by_text("Cluster ml-pool created.")).to_be_visible()
    live = page.locator("#cluster-live")
    tpu_row = live.locator("tr", has=page.locator("th", has_text="tpu"))
    expect(tpu_row).to_contain_text("4 tpu")
    expect(tpu_row).to_contain_text("0.0%")
    expect(live.locator("[data-status]")).to_have_text("Idle")

    page.evaluate("window.sameDocument = true")
    with live_server.app.app_context():
        cluster_id = db.session.scalar(sa.select(Cluster.id).where(Cluster.name == "ml-pool"))
        db.session.execute(
            sa.update(ClusterResource)
            .where(ClusterResource.cluster_id == cluster_id, ClusterResource.kind == "tpu")
            .values(used=3)
        )
        db.session.commit()

    # The partial polls every second (browser config): the new numbers arrive by themselves.
    expect(tpu_row).to_contain_text("75.0%")
    expect(tpu_row).to_contain_text("1 tpu")  # available
    expect(live.locator(".usage").filter(has_text="tpu")).to_contain_text("3 / 4 tpu · 75.0%")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"

    with live_server.app.app_context():
        db.session.execute(
            sa.update(ClusterResource)
            .where(ClusterResource.cluster_id == cluster_id, ClusterResource.kind == "tpu")
            .values(used=4)
        )
        db.session.commit()
    expect(live.locator("[data-status]")).to_have_text("Full")
    assert problems == [], problems

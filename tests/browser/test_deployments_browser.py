"""A real browser watches preemption happen and undo itself on a cluster page, without reloads.

One person keeps the cluster page open; another deploys a critical deployment through the form
(seeing the what-if preview first) and later deletes it. The open page's polling partial shows
the low-priority deployment move to the queue and come back to running.
"""

from __future__ import annotations

from playwright.sync_api import expect

from app.services import deployments
from tests.browser.session import sign_in
from tests.factories import make_cluster, make_user


def watch_for_errors(page, problems: list[str]) -> None:
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.location.get("url", "").endswith("/favicon.ico")
            and problems.append(message.text)
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))


def test_preemption_and_restart_show_live_on_the_cluster_page(app, live_server, page, new_page):
    problems: list[str] = []
    owner = make_user(role="owner", display_name="Olga")
    cluster = make_cluster(owner.organization, name="shared", resources={"cpu": 4000})
    low = deployments.submit(owner, cluster.id, "acme/batch:1", "low-batch", "low", {"cpu": 4})
    assert low.status == "running"

    watcher = page
    watch_for_errors(watcher, problems)
    sign_in(watcher, live_server, owner)
    watcher.goto(live_server.path(f"/clusters/{cluster.id}"))
    live = watcher.locator("#cluster-live")
    low_row = live.locator("tr", has_text="low-batch")
    expect(low_row).to_contain_text("acme/batch:1")  # the running table shows the image
    watcher.evaluate("window.sameDocument = true")

    deployer = new_page()
    watch_for_errors(deployer, problems)
    sign_in(deployer, live_server, owner)
    deployer.goto(live_server.path(f"/deployments/new?cluster_id={cluster.id}"))
    deployer.locator("#image").fill("acme/api:2")
    deployer.locator("#name").fill("urgent")
    deployer.locator("#priority_preset").select_option("critical")
    deployer.locator("#resource_cpu").fill("2")
    preview = deployer.locator("#preview")
    expect(preview).to_contain_text("Would start now.")
    expect(preview).to_contain_text(f"#{low.deployment.id} low-batch (priority 100, owned by Olga)")
    deployer.get_by_role("button", name="Deploy", exact=True).click()
    expect(deployer.get_by_role("heading", level=1)).to_have_text("urgent")
    expect(deployer.get_by_text("urgent is running. It preempted")).to_be_visible()
    # One banner for one action: the victim's creator caused it, so no separate notice.
    expect(deployer.locator(".flashes .flash")).to_have_count(1)

    # The open cluster page moves low-batch to the queue on its own.
    expect(low_row).to_contain_text("Preempted by urgent")
    expect(live.locator("tr[id^=running-]", has_text="urgent")).to_contain_text("acme/api:2")
    assert watcher.evaluate("window.sameDocument") is True

    deployer.once("dialog", lambda dialog: dialog.accept())
    deployer.get_by_role("button", name="Delete deployment").click()
    expect(deployer.get_by_text("Deployment urgent deleted")).to_be_visible()

    # ...and brings it back to running when the room returns.
    expect(live.get_by_text("The queue is empty.")).to_be_visible()
    expect(low_row).to_contain_text("acme/batch:1")
    expect(low_row).to_contain_text("preempted 1")
    expect(live.locator("tr", has_text="urgent")).to_have_count(0)
    assert watcher.evaluate("window.sameDocument") is True
    assert problems == []

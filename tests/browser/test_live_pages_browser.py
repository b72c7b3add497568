"""Live pages in a real browser: an unchanged poll changes nothing in the page (no swap: focus,
sideways scroll and the DOM stay as they are), a changed one is morphed in within one poll and
keeps focus and scroll, and the deployment page and both lists follow the scheduler on their
own, without a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from app.services import deployments
from tests.browser.session import sign_in
from tests.factories import make_cluster, make_user

LONG_IMAGE = "registry.example.com/a-rather-long-team-name/with-a-long-application-name:2026.11"
# Counts the polls htmx finished.
COUNT_POLLS = """() => { window.kargoPolls = 0;
  document.body.addEventListener('htmx:afterRequest', () => { window.kargoPolls++; }); }"""
# Counts every change inside the live section, except the class htmx-request that htmx puts on
# the polling element while a request is out: anything else would be a swap.
WATCH_MUTATIONS = """() => {
  window.kargoMutations = 0;
  const root = window.kargoRoot = document.getElementById('cluster-live');
  const mine = m => !(m.type === 'attributes' && m.attributeName === 'class' && m.target === root);
  new MutationObserver(list => { window.kargoMutations += list.filter(mine).length; })
    .observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def watch_polls(page, fragment: str) -> list[int]:
    statuses: list[int] = []
    page.on("response", lambda r: fragment in r.url and statuses.append(r.status))
    return statuses


def wait_for_polls(page, statuses: list[int], count: int) -> None:
    target = len(statuses) + count
    page.wait_for_function(f"() => window.kargoPolls >= {target}", timeout=count * 3_000 + 3_000)
    assert len(statuses) >= target


def count_polls(page) -> None:
    page.evaluate(COUNT_POLLS)


def test_the_dashboard_keeps_focus_and_scroll_and_shows_a_change_within_a_poll(
    app, live_server, new_page
):
    page = new_page(width=700, height=900)  # above the phone layout: the tables scroll sideways
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    user = make_user(display_name="Ada")
    cluster = make_cluster(user.organization, name="web", resources={"cpu": 8000})
    started = [
        deployments.submit(user, cluster.id, LONG_IMAGE, f"svc-{index}", "normal", {"cpu": "1"})
        for index in range(3)
    ]
    sign_in(page, live_server, user)
    statuses = watch_polls(page, f"/clusters/{cluster.id}/utilization")
    page.goto(live_server.path(f"/clusters/{cluster.id}"))
    count_polls(page)

    link = page.locator(f"#cluster-live #running-{started[1].deployment.id} a").first
    link.focus()
    wrap = page.locator("#cluster-live .table-wrap").nth(1)  # the running list
    assert wrap.evaluate("e => e.scrollWidth > e.clientWidth"), "the table should overflow"
    # Scrolled sideways as far as it goes, up to 120 px (how far depends on the columns).
    scrolled = wrap.evaluate(
        "e => { e.scrollLeft = Math.min(120, e.scrollWidth - e.clientWidth); return e.scrollLeft; }"
    )
    assert scrolled > 0
    page.evaluate(WATCH_MUTATIONS)

    wait_for_polls(page, statuses, 3)
    assert statuses[-3:] == [204, 204, 204]
    assert page.evaluate("window.kargoMutations") == 0, "an unchanged poll touched the page"
    assert page.evaluate("document.getElementById('cluster-live') === window.kargoRoot")
    assert link.evaluate("e => e === document.activeElement")
    assert wrap.evaluate("e => e.scrollLeft") == scrolled

    # A real change arrives within one poll (1 s in the browser tests), morphed in.
    deployments.submit(user, cluster.id, "redis:7", "cache", "normal", {"cpu": "2"})
    expect(page.locator("#cluster-live")).to_contain_text("cache", timeout=2_500)
    expect(page.locator("#cluster-live .counts")).to_contain_text("4 running")
    assert 200 in statuses
    assert link.evaluate("e => e === document.activeElement"), "focus was lost on a change"
    assert wrap.evaluate("e => e.scrollLeft") == scrolled, "sideways scroll was lost on a change"
    assert page.evaluate("document.getElementById('cluster-live') === window.kargoRoot")
    assert errors == []


def test_a_queued_deployment_page_turns_running_without_a_reload(app, live_server, page, new_page):
    user = make_user(display_name="Ada")
    cluster = make_cluster(user.organization, name="small", resources={"cpu": 1000})
    blocker = deployments.submit(user, cluster.id, "nginx:1.27", "blocker", "normal", {"cpu": "1"})
    queued = deployments.submit(user, cluster.id, "redis:7", "waiting", "normal", {"cpu": "1"})
    assert queued.status == "pending"
    sign_in(page, live_server, user)
    page.goto(live_server.path(f"/deployments/{queued.deployment.id}"))
    live = page.locator("#deployment-live")
    expect(live.locator("[data-status]")).to_have_text("Queued")
    page.evaluate("window.sameDocument = true")

    lists = new_page()
    sign_in(lists, live_server, user)
    lists.goto(live_server.path("/deployments/"))
    expect(lists.locator(f"#deployment-row-{queued.deployment.id}")).to_contain_text("Queued")
    clusters_page = new_page()
    sign_in(clusters_page, live_server, user)
    clusters_page.goto(live_server.path("/clusters/"))
    expect(clusters_page.locator(".counts")).to_contain_text("1 running · 1 pending")

    deployments.delete(user, blocker.deployment.id)

    expect(live.locator("[data-status]")).to_have_text("Running", timeout=4_000)
    expect(live).not_to_contain_text("Why it waits")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    expect(lists.locator(f"#deployment-row-{queued.deployment.id}")).to_contain_text(
        "Running", timeout=4_000
    )
    expect(lists.locator(f"#deployment-row-{blocker.deployment.id}")).to_have_count(0)
    expect(clusters_page.locator(".counts")).to_contain_text("1 running · 0 pending", timeout=4_000)

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
    # A bound for a loaded machine (polls come every second), not a measure.
    page.wait_for_function(f"() => window.kargoPolls >= {target}", timeout=count * 10_000)
    assert len(statuses) >= target


WIDEST_TABLE = """() => {
  let best = -1, room = 0;
  document.querySelectorAll('#cluster-live .table-wrap').forEach((wrap, index) => {
    const overflow = wrap.scrollWidth - wrap.clientWidth;
    if (overflow > room) { room = overflow; best = index; }
  });
  return best;
}"""


def count_polls(page) -> None:
    page.evaluate(COUNT_POLLS)


# Records how many polls had finished when `text` first showed in the live section (the poll
# that brought it included: its afterRequest runs before the observer's callback).
WATCH_FOR_TEXT = """text => {
  window.kargoShownAt = null;
  const root = document.getElementById('cluster-live');
  new MutationObserver(() => {
    if (window.kargoShownAt === null && root.textContent.includes(text)) {
      window.kargoShownAt = window.kargoPolls;
    }
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def test_the_dashboard_keeps_focus_and_scroll_and_shows_a_change_within_a_poll(
    app, live_server, new_page
):
    page = new_page(width=320, height=700)  # a small phone: the usage table scrolls sideways
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
    # The table that scrolls sideways the most on this phone (how far depends on the columns).
    index = page.evaluate(WIDEST_TABLE)
    assert index >= 0, "a table should scroll sideways on a phone"
    wrap = page.locator("#cluster-live .table-wrap").nth(index)
    scrolled = wrap.evaluate(
        "e => { e.scrollLeft = Math.ceil((e.scrollWidth - e.clientWidth) / 2); "
        "return e.scrollLeft; }"
    )
    assert scrolled > 0
    page.evaluate(WATCH_MUTATIONS)

    wait_for_polls(page, statuses, 3)
    assert statuses[-3:] == [204, 204, 204]
    assert page.evaluate("window.kargoMutations") == 0, "an unchanged poll touched the page"
    assert page.evaluate("document.getElementById('cluster-live') === window.kargoRoot")
    assert link.evaluate("e => e === document.activeElement")
    assert wrap.evaluate("e => e.scrollLeft") == scrolled

    # A real change arrives with the next poll, morphed in. Counted in polls, not seconds:
    # the poll under way at the commit may still answer 204, the one after it must bring it.
    page.evaluate(WATCH_FOR_TEXT, "cache")
    deployments.submit(user, cluster.id, "redis:7", "cache", "normal", {"cpu": "2"})
    polls_at_commit = page.evaluate("window.kargoPolls")  # at or after the commit
    expect(page.locator("#cluster-live")).to_contain_text("cache")
    shown_at = page.evaluate("window.kargoShownAt")
    assert shown_at is not None and shown_at <= polls_at_commit + 2, (shown_at, polls_at_commit)
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

    expect(live.locator("[data-status]")).to_have_text("Running")
    expect(live).not_to_contain_text("Why it waits")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    expect(lists.locator(f"#deployment-row-{queued.deployment.id}")).to_contain_text("Running")
    expect(lists.locator(f"#deployment-row-{blocker.deployment.id}")).to_have_count(0)
    expect(clusters_page.locator(".counts")).to_contain_text("1 running · 0 pending")


def test_the_list_filters_as_you_type_and_keeps_the_query_in_the_address(app, live_server, page):
    user = make_user(display_name="Ada")
    web = make_cluster(user.organization, name="web", resources={"cpu": 8000})
    for name in ("front", "api", "trainer"):
        deployments.submit(user, web.id, f"nginx:{len(name)}", name, "normal", {"cpu": "1"})
    sign_in(page, live_server, user)
    page.goto(live_server.path("/deployments/"))
    page.evaluate("window.sameDocument = true")
    rows = page.locator("#deployments-live tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Search").press_sequentially("tra", delay=30)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("trainer")
    page.wait_for_url("**/deployments/?q=tra*")
    page.get_by_label("Status").select_option("pending")
    expect(page.locator("#deployments-live")).to_contain_text("No deployments match.")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    assert "status=pending" in page.url and "q=tra" in page.url
    # The address is the list: opening it again shows the same.
    page.goto(page.url)
    expect(page.locator("#deployments-live")).to_contain_text("No deployments match.")
    expect(page.get_by_label("Search")).to_have_value("tra")


def test_the_deploy_form_breadcrumb_follows_the_picker(app, live_server, page):
    user = make_user(display_name="Ada")
    make_cluster(user.organization, name="alpha", resources={"cpu": 1000})
    beta = make_cluster(user.organization, name="beta", resources={"cpu": 1000, "gpu": 1})
    sign_in(page, live_server, user)
    page.goto(live_server.path("/deployments/new"))
    crumb = page.locator("#deploy-breadcrumb")
    expect(crumb).to_contain_text("alpha")
    page.locator("#cluster_id").select_option(str(beta.id))
    expect(crumb).to_contain_text("beta")
    expect(crumb).not_to_contain_text("alpha")
    expect(page.get_by_label("gpu")).to_be_visible()

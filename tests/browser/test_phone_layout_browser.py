"""Every page fits a phone (390x844) and a 1366 px desktop without sideways scrolling, and on a
phone the facts and actions that matter are on screen: tables become stacked cards.

Measured in the browser: `document.scrollingElement.scrollWidth <= innerWidth`, no element
sticking out past the right edge (outside a scrolling box), and the key buttons, pickers and
reasons inside the viewport's width."""

from __future__ import annotations

import pytest

from app.services import accounts, deployments
from tests.browser.session import sign_in
from tests.factories import make_cluster, make_user

LONG_IMAGE = "registry.example.com/platform-engineering/customer-facing-api-gateway:2026.11.30-rc1"
PHONE = (390, 844)
DESKTOP = (1366, 900)

# Elements wider than the page's right edge, outside any box that scrolls sideways on its own.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p).overflowX; if (s === 'auto' || s === 'scroll') return true; }
    return false; };
  return [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > width + 1 && !scrolls(e);
  }).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className).slice(0, 5);
}"""


@pytest.fixture
def world(app):
    owner = make_user(role="owner", display_name="Ada Lovelace-Byron")
    member = make_user(owner.organization, role="member", display_name="Bob Builder")
    web = make_cluster(owner.organization, name="web-frontends", resources={"cpu": 2000})
    make_cluster(owner.organization, name="gpu-pool", resources={"cpu": 8000, "gpu": 2})
    running = deployments.submit(owner, web.id, LONG_IMAGE, "gateway", "high", {"cpu": "2"})
    queued = deployments.submit(
        member, web.id, LONG_IMAGE, "gateway-canary-eu-west", "normal", {"cpu": "1.5"}
    )
    accounts.create_invite(owner, "Carol from the data platform team", "member")
    accounts.create_token(owner, "ci-pipeline-main-branch", 30)
    return {
        "owner": owner,
        "member": member,
        "cluster": web,
        "running": running.deployment,
        "queued": queued.deployment,
    }


def pages(world) -> list[str]:
    cluster, queued = world["cluster"].id, world["queued"].id
    return [
        "/clusters/",
        f"/clusters/{cluster}",
        "/clusters/new",
        "/deployments/",
        f"/deployments/new?cluster_id={cluster}",
        f"/deployments/{queued}",
        f"/deployments/{world['running'].id}",
        "/organization",
        "/profile",
        "/profile/tokens",
        "/admin/members",
        "/admin/invites",
        "/admin/settings",
    ]


def misfits(page, path: str) -> list[str]:
    """What does not fit on the page at `path` (nothing, when it fits)."""
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    problems = []
    if scroll > width:
        problems.append(f"{path}: the page scrolls sideways ({scroll} > {width})")
    if sticking_out := page.evaluate(OVERFLOWING):
        problems.append(f"{path}: elements stick out on the right: {sticking_out}")
    return problems


def assert_on_screen(locator, what: str) -> None:
    page_width = locator.page.evaluate("window.innerWidth")
    box = locator.bounding_box()
    assert box is not None, f"{what} is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= page_width, f"{what} is off screen: {box}"


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page_fits_without_sideways_scrolling(live_server, new_page, world, size):
    page = new_page(*size)
    sign_in(page, live_server, world["owner"])
    problems = []
    for path in pages(world):
        page.goto(live_server.path(path))
        problems += misfits(page, path)
    assert not problems, "\n".join(problems)


def test_on_a_phone_the_key_facts_and_actions_are_on_screen(live_server, new_page, world):
    page = new_page(*PHONE)
    sign_in(page, live_server, world["owner"])

    page.goto(live_server.path(f"/clusters/{world['cluster'].id}"))
    queue_row = page.locator(f"#queued-{world['queued'].id}")
    assert_on_screen(queue_row.locator(".reason"), "the queue's reason")
    assert_on_screen(queue_row.get_by_role("link", name="gateway-canary-eu-west"), "its link")
    assert_on_screen(page.locator(f"#running-{world['running'].id} code"), "an image")

    page.goto(live_server.path("/deployments/"))
    row = page.locator(f"#deployment-row-{world['queued'].id}")
    for cell in ("Cluster", "Status", "Priority", "Requests", "Created by", "Submitted"):
        assert_on_screen(row.locator(f'[data-label="{cell}"]'), f"the list's {cell}")
    assert_on_screen(page.get_by_label("Search"), "the search box")

    page.goto(live_server.path("/admin/members"))
    bob = page.locator("tr[data-member]").filter(has_text="Bob Builder")
    assert_on_screen(bob.get_by_label("Role of Bob Builder"), "the role picker")
    assert_on_screen(bob.get_by_role("button", name="Change role"), "Change role")
    assert_on_screen(bob.get_by_role("button", name="Deactivate"), "Deactivate")

    page.goto(live_server.path("/admin/invites"))
    assert_on_screen(page.get_by_role("button", name="Revoke"), "Revoke")

    page.goto(live_server.path("/profile/tokens"))
    assert_on_screen(page.get_by_role("button", name="Revoke").first, "token Revoke")

"""Accessibility in a real browser: axe-core's WCAG 2.0 and 2.1 level A and AA rules find nothing
on the portal's pages, filled with what an organization really has (clusters with running,
queued and preempted deployments, invites, members, quotas, a webhook, audit entries).

Every page is checked at a 1366 px desktop; a few are checked again on a 390 px phone and in
dark mode, where other styles (stacked tables, the dark palette) apply. axe-core comes from the
axe-playwright-python package (its axe.min.js is injected into the page; no CDN). A failure
lists, page by page, each rule that failed with its impact and the selectors of the elements.
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from app.services import accounts, deployments, notifications, quotas
from tests.browser.session import sign_in
from tests.factories import make_cluster, make_org, make_user
from tests.support.databases import postgres_url

# The pages' markup and styles do not depend on the database: they are checked once, in the
# SQLite pass of `make test` (the other browser tests run on both).
pytestmark = pytest.mark.skipif(
    postgres_url() is not None, reason="accessibility is checked in the SQLite pass"
)

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
LONG_IMAGE = "registry.example.com/platform-engineering/customer-facing-api-gateway:2026.11.30"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": WCAG_A_AA},
    "resultTypes": ["violations"],
}
AXE = Axe()

# The views a page is checked in: (viewport, color scheme).
VIEWS = {
    "desktop": (DESKTOP, "light"),
    "phone": (PHONE, "light"),
    "dark": (DESKTOP, "dark"),
    "phone-dark": (PHONE, "dark"),
}


def violations(page, where: str) -> list[str]:
    """axe-core's WCAG A/AA violations on the page as shown, one readable block each."""
    found = AXE.run(page, options=AXE_OPTIONS).response["violations"]
    report = []
    for violation in found:
        nodes = "\n".join(
            f"      {' '.join(map(str, node['target']))}: {node.get('failureSummary', '')}"
            for node in violation["nodes"]
        )
        report.append(
            f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}\n{nodes}"
        )
    return report


def open_view(browser, view: str):
    viewport, scheme = VIEWS[view]
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    context.set_default_timeout(10_000)
    return context, context.new_page()


@pytest.fixture
def world(app):
    """An organization in full swing: owners, an admin, members (one deactivated), two
    clusters, running, queued and preempted deployments, invites, a token, quotas, a webhook
    with a delivery, and the audit entries all of this wrote."""
    org = make_org("Analytical Engines")
    owner = make_user(org, "ada", role="owner", display_name="Ada Lovelace")
    make_user(org, "grace", role="admin", display_name="Grace Hopper")
    member = make_user(org, "bob", role="member", display_name="Bob Builder")
    make_user(org, "old", role="member", display_name="Former Member", active=False)
    web = make_cluster(org, name="web-frontends", resources={"cpu": 4000, "ram": 8192, "gpu": 1})
    make_cluster(org, name="gpu-pool", resources={"cpu": 8000, "gpu": 4})
    low = deployments.submit(owner, web.id, "acme/batch:1", "nightly-batch", "low", {"cpu": "2"})
    running = deployments.submit(owner, web.id, LONG_IMAGE, "gateway", "normal", {"cpu": "2"})
    # A high-priority one takes the room of the low-priority batch: preempted, queued again.
    deployments.submit(member, web.id, "acme/api:2", "urgent-fix", "high", {"cpu": "2"})
    queued = deployments.submit(member, web.id, "acme/api:3", "canary", "normal", {"cpu": "3"})
    accounts.create_invite(owner, "Carol from the data platform team", "member")
    accounts.create_invite(owner, "Dave, platform", "admin")
    accounts.create_token(owner, "ci-pipeline-main-branch", 30)
    quotas.create(owner, {"scope": "each_member", "kind": "gpu", "amount": 1})
    quotas.create(
        owner, {"scope": "organization", "cluster_id": web.id, "kind": "cpu", "amount": 6}
    )
    hook, _secret = notifications.create_webhook(
        owner, "https://hooks.example.com/kargo", list(notifications.EVENT_LABELS)
    )
    notifications.send_test(owner, hook.id)
    # The pages show each state: checked here so a changed scheduler cannot empty them unseen.
    assert deployments.get(owner, low.deployment.id).preemptions == 1
    assert deployments.get(owner, low.deployment.id).status == "pending"
    assert (running.status, queued.status) == ("running", "pending")
    return {
        "owner": owner,
        "member": member,
        "cluster": web,
        "running": running.deployment,
        "preempted": low.deployment,
        "queued": queued.deployment,
        "webhook": hook,
    }


def signed_in_pages(world) -> dict[str, str]:
    cluster = world["cluster"].id
    return {
        "clusters list (the dashboard)": "/clusters/",
        "cluster detail": f"/clusters/{cluster}",
        "new cluster form": "/clusters/new",
        "deploy form": f"/deployments/new?cluster_id={cluster}",
        "deployments list": "/deployments/",
        "running deployment": f"/deployments/{world['running'].id}",
        "queued deployment": f"/deployments/{world['queued'].id}",
        "preempted deployment": f"/deployments/{world['preempted'].id}",
        "organization": "/organization",
        "profile": "/profile",
        "API tokens": "/profile/tokens",
        "members": "/admin/members",
        "invites": "/admin/invites",
        "organization settings": "/admin/settings",
        "quotas": "/admin/quotas",
        "audit log": "/history/",
        "webhooks": "/admin/webhooks/",
        "webhook detail": f"/admin/webhooks/{world['webhook'].id}",
        "not found": "/deployments/999999",
    }


# Checked again on a phone and in dark mode: the busiest pages, where stacked tables, badges,
# flashes and muted words on cards meet the other palette and layout.
FEW = (
    "cluster detail",
    "deploy form",
    "deployments list",
    "queued deployment",
    "preempted deployment",
    "members",
    "invites",
    "quotas",
    "audit log",
    "webhook detail",
)


def check_pages(page, live_server, pages: dict[str, str], view: str) -> list[str]:
    problems: list[str] = []
    for name, path in pages.items():
        page.goto(live_server.path(path))
        problems += violations(page, f"{name} ({path}, {view})")
    return problems


@pytest.mark.parametrize("view", list(VIEWS))
def test_the_owners_pages_break_no_wcag_rule(browser, live_server, world, view):
    pages = signed_in_pages(world)
    if view != "desktop":
        pages = {name: path for name, path in pages.items() if name in FEW}
    context, page = open_view(browser, view)
    try:
        sign_in(page, live_server, world["owner"])
        problems = check_pages(page, live_server, pages, view)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_a_members_pages_break_no_wcag_rule(browser, live_server, world):
    """A member sees fewer buttons, and a 403 page where the admin pages are."""
    pages = {
        "clusters list": "/clusters/",
        "cluster detail": f"/clusters/{world['cluster'].id}",
        "own queued deployment": f"/deployments/{world['queued'].id}",
        "someone else's deployment": f"/deployments/{world['running'].id}",
        "organization": "/organization",
        "audit log": "/history/",
        "forbidden": "/admin/members",
    }
    context, page = open_view(browser, "desktop")
    try:
        sign_in(page, live_server, world["member"])
        problems = check_pages(page, live_server, pages, "desktop")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("view", ["desktop", "phone", "dark"])
def test_the_public_pages_break_no_wcag_rule(browser, live_server, world, view):
    _invite, code = accounts.create_invite(world["owner"], "Eve", "member")
    pages = {
        "home": "/",
        "login": "/login",
        "signup": "/signup",
        "invite": f"/invite/{code}",
        "unknown invite": "/invite/no-such-code",
        "not found": "/no-such-page",
    }
    context, page = open_view(browser, view)
    try:
        problems = check_pages(page, live_server, pages, view)
        page.goto(live_server.path("/login"))
        page.get_by_label(re.compile(r"^Username")).fill("ada")
        page.get_by_label(re.compile(r"^Password")).fill("not the password")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".flash-error, [aria-invalid=true]").first).to_be_visible()
        problems += violations(page, f"login with an error ({view})")
        page.goto(live_server.path("/signup"))
        page.get_by_label(re.compile(r"^Organization name")).fill("Engines")
        page.get_by_label(re.compile(r"^Display name")).fill("Eve")
        page.get_by_label(re.compile(r"^Username")).fill("ada")  # taken
        page.get_by_label(re.compile(r"^Password")).fill("too short")
        page.get_by_label(re.compile(r"^Confirm password")).fill("does not match")
        page.get_by_role("button", name=re.compile("Create")).click()
        expect(page.locator("[aria-invalid=true]").first).to_be_visible()
        problems += violations(page, f"signup with errors ({view})")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("view", ["desktop", "dark"])
def test_forms_in_each_of_their_states_break_no_wcag_rule(browser, live_server, world, view):
    """The deploy form's what-if preview (starts, preempts, waits, cannot), its errors and the
    flash after deploying; the secrets shown once (a token, an invite link, a reset link)."""
    context, page = open_view(browser, view)
    problems: list[str] = []
    try:
        sign_in(page, live_server, world["owner"])
        page.goto(live_server.path(f"/deployments/new?cluster_id={world['cluster'].id}"))
        page.locator("#image").fill("acme/api:4")
        page.locator("#name").fill("reporting")
        preview = page.locator("#preview")
        for preset, cpu, gpu, verdict in (
            ("normal", "", "1", "Would start now"),
            ("critical", "2", "", "Would preempt"),
            ("normal", "1", "", "Would wait"),
            ("normal", "99", "", "Cannot deploy this yet"),
        ):
            page.locator("#priority_preset").select_option(preset)
            page.locator("#resource_cpu").fill(cpu)
            page.locator("#resource_gpu").fill(gpu)
            expect(preview).to_contain_text(verdict)
            problems += violations(page, f"deploy form, preview '{verdict}' ({view})")
        page.locator("#resource_cpu").fill("1")
        page.locator("#name").fill("Not a valid name!")
        page.get_by_role("button", name="Deploy", exact=True).click()
        expect(page.locator("#name[aria-invalid=true]")).to_be_visible()
        problems += violations(page, f"deploy form with an error ({view})")
        page.locator("#name").fill("reporting")
        page.get_by_role("button", name="Deploy", exact=True).click()
        expect(page.locator(".flashes .flash")).to_be_visible()
        problems += violations(page, f"deployment page after deploying ({view})")

        page.goto(live_server.path("/clusters/new"))
        page.get_by_label(re.compile(r"^Name")).fill("Not a valid name!")
        page.get_by_label(re.compile(r"^CPU")).fill("lots")
        page.get_by_role("button", name="Create cluster").click()
        expect(page.locator("[aria-invalid=true]").first).to_be_visible()
        problems += violations(page, f"new cluster form with errors ({view})")

        page.goto(live_server.path("/profile/tokens"))
        page.get_by_label(re.compile(r"^Token name")).fill("deploy-bot")
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_role("textbox", name="The new token")).to_be_visible()
        problems += violations(page, f"API tokens with a new token ({view})")

        page.goto(live_server.path("/admin/invites"))
        page.get_by_role("button", name=re.compile("invite", re.IGNORECASE)).click()
        expect(page.get_by_role("textbox", name="Invite link")).to_be_visible()
        problems += violations(page, f"invites with a new link ({view})")

        page.goto(live_server.path("/admin/members"))
        page.on("dialog", lambda dialog: dialog.accept())
        page.locator("tr[data-member=bob]").get_by_role("button", name="Reset link").click()
        expect(page.get_by_role("textbox", name="Password reset link")).to_be_visible()
        problems += violations(page, f"members with a reset link ({view})")
    finally:
        context.close()
    assert not problems, "\n".join(problems)

"""Real browser: the profile, personal API tokens, password reset links and the admin tables
on a phone (390 px wide), where rows stack so that every action stays on screen."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.session import sign_in
from tests.factories import make_org, make_user

PHONE = {"width": 390, "height": 844}


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_a_token_is_shown_once_listed_and_revoked(live_server, page):
    user = make_user(make_org(), "ada")
    sign_in(page, live_server, user)
    page.goto(live_server.path("/profile"))
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label(re.compile(r"^Token name")).fill("ci-pipeline")
    page.get_by_label("Expires after").select_option("90")
    page.get_by_role("button", name="Create token").click()

    secret = page.get_by_role("textbox", name="The new token").input_value()
    assert len(secret) >= 43
    row = page.locator("tr[data-token=ci-pipeline]")
    expect(row).to_contain_text("Never")  # not used yet
    page.reload()  # the page after the redirect: a reload creates nothing and shows nothing
    expect(page.get_by_role("textbox", name="The new token")).to_have_count(0)
    expect(page.locator("tr[data-token]")).to_have_count(1)

    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("The token ci-pipeline was revoked")).to_be_visible()
    expect(page.locator("tr[data-token]")).to_have_count(0)


def test_changing_the_password_logs_out_the_other_browser(live_server, page, new_page):
    user = make_user(make_org(), "ada")
    sign_in(page, live_server, user)
    other = new_page()
    sign_in(other, live_server, user)
    page.goto(live_server.path("/profile"))
    page.get_by_role("textbox", name=re.compile(r"^Display name")).fill("Ada King")
    page.get_by_role("button", name="Save display name").click()
    expect(page.get_by_role("heading", name="Ada King", level=1)).to_be_visible()

    page.get_by_label(re.compile(r"^Current password")).fill("correct horse battery")
    page.get_by_label(re.compile(r"^New password")).fill("countess of lovelace")
    page.get_by_label(re.compile(r"^Confirm new password")).fill("countess of lovelace")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Ended 1 other session")).to_be_visible()

    other.goto(live_server.path("/profile"))
    expect(other.get_by_role("heading", name="Log in")).to_be_visible()


def test_an_owner_hands_a_member_a_reset_link(live_server, page, new_page):
    org = make_org("Engines")
    owner = make_user(org, "ada")
    make_user(org, "charles", role="member", display_name="Charles Babbage")
    sign_in(page, live_server, owner)
    page.goto(live_server.path("/admin/members"))
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator("tr[data-member=charles]")
    row.get_by_role("button", name="Reset link").click()
    link = page.get_by_role("textbox", name="Password reset link").input_value()
    assert link.startswith(live_server.url + "/reset/")

    member = new_page()
    member.goto(link)
    expect(member.get_by_role("heading", name="Choose a new password")).to_be_visible()
    member.get_by_label(re.compile(r"^New password")).fill("difference engine two")
    member.get_by_label(re.compile(r"^Confirm new password")).fill("difference engine two")
    member.get_by_role("button", name="Set new password").click()
    expect(member.get_by_text("Your password was changed")).to_be_visible()
    member.goto(link)
    expect(member.get_by_role("heading", name="Reset link already used")).to_be_visible()


def test_admin_tables_stack_on_a_phone_with_every_action_on_screen(live_server, new_page):
    org = make_org("Pocket")
    owner = make_user(org, "olivia", display_name="Olivia Owner")
    for n in range(3):
        make_user(org, f"member{n}", role="member", display_name=f"Member Number {n}")
    from app.services import accounts

    for label in ("Ada, data team", "Grace, platform"):
        accounts.create_invite(owner, label=label)
    accounts.create_token(owner, "a-rather-long-token-name-for-ci", 30)

    phone = new_page(**PHONE)
    sign_in(phone, live_server, owner)
    for path, action in (
        ("/admin/members", "Deactivate"),
        ("/admin/invites", "Revoke"),
        ("/profile/tokens", "Revoke"),
    ):
        phone.goto(live_server.path(path))
        assert no_horizontal_overflow(phone), path
        buttons = phone.get_by_role("button", name=action)
        assert buttons.count() >= 1, path
        for index in range(buttons.count()):
            box = buttons.nth(index).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], path
    # Stacked cells name their column.
    phone.goto(live_server.path("/admin/invites"))
    label = phone.locator("tr[data-invite-state=active] td[data-label=Role]").first
    before = label.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert before == '"Role"'

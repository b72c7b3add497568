"""Real browser: sign up, invite a colleague through the copied link, both see each other.

Also checks that the navigation fits a phone-sized screen without horizontal scrolling.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

PHONE = {"width": 390, "height": 844}


def sign_up(page, live_server, username="ada", organization="Analytical Engines"):
    page.goto(live_server.path("/signup"))
    page.get_by_label(re.compile(r"^Organization name")).fill(organization)
    page.get_by_label(re.compile(r"^Display name")).fill("Ada Lovelace")
    page.get_by_label(re.compile(r"^Username")).fill(username)
    page.get_by_label(re.compile(r"^Password")).fill("difference-engine")
    page.get_by_label(re.compile(r"^Confirm password")).fill("difference-engine")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("heading", name=organization, level=1)).to_be_visible()


def test_sign_up_invite_join_and_see_both_members(live_server, page, new_page):
    sign_up(page, live_server)

    page.get_by_role("button", name="Invite people").click()  # a link styled as a button
    page.get_by_role("button", name="Create invite link").click()
    link_input = page.get_by_role("textbox", name="Invite link")
    expect(link_input).to_have_attribute("readonly", "")
    invite_link = link_input.input_value()
    assert invite_link.startswith(live_server.url + "/invite/")
    page.wait_for_load_state()  # app.js (deferred) has attached the copy handler
    copy = page.locator("button[data-copy-target=new-invite-link]")
    copy.click()
    expect(copy).to_have_text("Copied")

    colleague = new_page()
    colleague.goto(invite_link)
    expect(colleague.get_by_role("heading", name="Join Analytical Engines")).to_be_visible()
    colleague.get_by_label(re.compile(r"^Display name")).fill("Charles Babbage")
    colleague.get_by_label(re.compile(r"^Username")).fill("charles")
    colleague.get_by_label(re.compile(r"^Password")).fill("analytical-engine")
    colleague.get_by_label(re.compile(r"^Confirm password")).fill("analytical-engine")
    colleague.get_by_role("button", name="Join organization").click()

    members = colleague.locator("table.members")
    expect(members).to_contain_text("Ada Lovelace")
    expect(members).to_contain_text("Charles Babbage")

    # The owner sees the new member too, and the invite listed as used by them.
    page.goto(live_server.path("/organization"))
    expect(page.locator("table.members")).to_contain_text("Charles Babbage")
    page.goto(live_server.path("/admin/invites"))
    expect(page.locator("tr[data-invite-state=used]")).to_contain_text("Charles Babbage")

    # The link is spent: opening it again says so.
    third = new_page()
    third.goto(invite_link)
    expect(third.get_by_role("heading", name="Invite link already used")).to_be_visible()


def test_navigation_fits_a_phone_screen(live_server, page, new_page):
    phone = new_page(**PHONE)
    phone.goto(live_server.path("/"))
    assert no_horizontal_overflow(phone)
    sign_up(phone, live_server, username="mobile", organization="Pocket Org")
    expect(phone.get_by_role("button", name="Log out")).to_be_visible()
    assert no_horizontal_overflow(phone)
    for path in ("/admin/members", "/admin/invites", "/profile"):
        phone.goto(live_server.path(path))
        assert no_horizontal_overflow(phone), path


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

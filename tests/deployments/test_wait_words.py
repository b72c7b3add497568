"""Wait reasons in words (services/waits.py): what is short and by how much, who holds it (by
name, three at most, "and N more"), what would let it start; and on the pages, linked."""

from __future__ import annotations

import re

from app.services import deployments, waits
from tests.factories import make_cluster, make_user


def blocked(**overrides) -> dict:
    wait = {
        "cause": "blocked",
        "kind": "cpu",
        "needed": 1500,
        "free": 0,
        "held": 2000,
        "priority": 500,
        "blocking_ids": [11, 12, 13, 14, 15],
        "blocking_more": 2,
        "preempted_by": None,
        "preemptor_priority": None,
        "message": None,
    }
    wait.update(overrides)
    return wait


NAMES = {11: "web", 12: "api", 13: "cache", 14: "queue", 15: "mail", 9: "trainer"}


def test_what_is_short_by_how_much_and_who_holds_it():
    words = waits.words(blocked(), NAMES, {"cpu": 2000})
    assert words.text == (
        "Short of 1.5 cores: it needs 1.5 cores and 0 cores are free. "
        "2 cores are held by deployments of priority normal (500) or higher, which it cannot "
        "preempt: web, api, cache and 4 more. "
        "It starts by itself once 1.5 cores more are free (when one of those ends or is "
        "deleted), or sooner if its priority is raised above theirs."
    )
    assert [h.name for h in words.holders] == ["web", "api", "cache"]
    assert words.holders_more == 4


def test_what_lower_priorities_hold_is_not_counted_as_missing():
    wait = blocked(needed=3000, free=500, held=2000, blocking_ids=[11], blocking_more=0)
    words = waits.words(wait, NAMES, {"cpu": 4000})
    assert words.summary == (
        "Short of 1 core: it needs 3 cores and 0.5 cores are free, "
        "1.5 cores more held by lower priorities."
    )
    assert "web." in words.text and "more" not in words.holders_intro


def test_one_unit_per_kind_in_the_words():
    wait = blocked(kind="ram", needed=512, free=0, held=1024, blocking_ids=[], blocking_more=0)
    words = waits.words(wait, {}, {"ram": 1024})
    assert words.summary == "Short of 0.5 GiB: it needs 0.5 GiB and 0 GiB are free."
    assert words.holders_intro.endswith("which it cannot preempt.")
    gpu = waits.words(blocked(kind="gpu", needed=1, held=1, blocking_ids=[11]), NAMES, {"gpu": 1})
    assert gpu.summary == "Short of 1 gpu: it needs 1 gpu and 0 gpu are free."
    assert gpu.holders_intro.startswith("1 gpu is held")


def test_deployments_deleted_since_are_left_out():
    words = waits.words(blocked(blocking_ids=[99, 11], blocking_more=0), NAMES, {"cpu": 2000})
    assert [h.name for h in words.holders] == ["web"] and words.holders_more == 0


def test_preempted_and_repacked_name_who_sent_it_back():
    wait = blocked(cause="preempted", preempted_by=9, preemptor_priority=800)
    words = waits.words(wait, NAMES, {"cpu": 2000})
    assert words.text.startswith("Preempted by trainer, of priority high (800). Short of")
    assert words.sent_back_by == waits.Named(9, "trainer")
    moved = waits.words(
        blocked(cause="repacked", preempted_by=9, preemptor_priority=500), NAMES, {"cpu": 2000}
    )
    assert moved.text.startswith(
        "The cluster's repack moved it back to the queue to fit trainer, of the same priority."
    )


def test_a_request_that_can_never_run_says_so():
    wait = blocked(cause="infeasible", message="it asks for 4 gpu and this cluster has 2.")
    words = waits.words(wait, {}, {})
    assert words.summary == (
        "It can never run on this cluster: it asks for 4 gpu and this cluster has 2."
    )
    assert words.holders == () and "clone it" in words.next_step


def test_the_pages_link_the_holders_by_name(client, login_as, app):
    owner = make_user(role="owner")
    cluster = make_cluster(owner.organization, name="web", resources={"cpu": 2000})
    holders = [
        deployments.submit(owner, cluster.id, "nginx:1", f"holder-{i}", "high", {"cpu": "0.5"})
        for i in range(4)
    ]
    queued = deployments.submit(owner, cluster.id, "redis:7", "waiting", "normal", {"cpu": "1"})
    assert queued.status == "pending"
    login_as(client, owner)
    for path in (
        f"/clusters/{cluster.id}",
        "/deployments/",
        f"/deployments/{queued.deployment.id}",
    ):
        html = client.get(path).get_data(as_text=True)
        reason = re.search(r'<span class="wait-words">(.*?)</span>', html, re.S).group(1)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", reason)).strip()
        assert text.startswith("Short of 1 core: it needs 1 core and 0 cores are free."), path
        assert "which it cannot preempt: holder-0, holder-1, holder-2 and 1 more." in text
        for holder in holders[:3]:
            assert f'href="/deployments/{holder.deployment.id}"' in reason, path


def test_the_fair_use_causes_in_words():
    quota = waits.words(
        blocked(cause="quota", kind="gpu", message="over your gpu quota (6 of 8 used)"), {}, {}
    )
    assert quota.summary == (
        "Starting it would take a quota over its limit: over your gpu quota (6 of 8 used)."
    )
    assert "a quota never preempts" in quota.next_step
    never = waits.words(blocked(cause="no_preempt", needed=2000, free=500), {}, {"cpu": 4000})
    assert never.text == (
        "It never preempts, so it waits for free room. It needs 2 cores and 0.5 cores are "
        "free. It starts by itself once 1.5 cores more is free."
    )
    behind = waits.words(blocked(cause="reserved", blocking_ids=[9]), NAMES, {"cpu": 2000})
    assert behind.sent_back_by == waits.Named(9, "trainer")
    assert behind.text.startswith("It waits behind trainer. That deployment has waited longer")

"""The pure scheduler's fair-use rules (docs/scheduling.md, "Fair use"): quotas, non-preempting
work, the minimum run time, the starvation guard's reservation and forward simulation.

Worked cases first, then property tests over random sequences of submits and deletes.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from app.scheduler import (
    ClusterState,
    Decision,
    Delete,
    Fairness,
    Job,
    Quota,
    Reconcile,
    Submit,
    quota_violations,
    schedule,
    simulate,
    transition_violations,
    violations,
)

HELD = ("quota", "no_preempt", "reserved")
MIN = 60_000_000  # a minute in time keys (microseconds)


def job(i, priority, submitted=0, started=None, **requests):
    return Job(i, priority, requests, submitted, started)


def after(state: ClusterState, decision: Decision, event=None) -> tuple[list[Job], list[Job]]:
    """The running and pending jobs after `decision` (started ones take `started=now`)."""
    now = state.fair.now if state.fair else 0
    running, pending = list(state.running), list(state.pending)
    if isinstance(event, Submit):
        pending.append(event.job)
    if isinstance(event, Delete):
        running = [j for j in running if j.id not in event.ids]
        pending = [j for j in pending if j.id not in event.ids]
    left = set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
    started = set(decision.started)
    new_running = [j for j in running if j.id not in left]
    new_running += [replace(j, started=now) for j in pending if j.id in started]
    new_pending = [j for j in pending if j.id not in started]
    new_pending += [replace(j, started=None) for j in running if j.id in left]
    return new_running, new_pending


# -- worked cases --------------------------------------------------------------------------


def test_over_quota_waits_with_the_reason_and_never_preempts():
    # Capacity 10 gpu; my quota 8 gpu; I run 6 (priority 100); someone else runs 2 (prio 0).
    quota = Quota("gpu", 8, frozenset({1, 3, 4}))
    state = ClusterState(
        {"gpu": 10},
        [job(1, 100, gpu=6), job(2, 0, gpu=2)],
        [],
        fair=Fairness(now=10, quotas=(quota,)),
    )
    decision = schedule(state, Submit(job(3, 900, 5, gpu=4)))
    assert decision.started == [] and decision.preempted == {}
    (entry,) = decision.queue
    assert entry.reason.startswith("over your gpu quota (6 of 8 used)")
    assert entry.wait.cause == "quota" and entry.wait.held == 6 and entry.wait.free == 2
    # Two that fit the quota alone but not together: the first in queue order starts.
    state = ClusterState({"gpu": 10}, [job(1, 100, gpu=6)], [], fair=Fairness(10, (quota,)))
    state = replace(state, pending=[job(3, 500, 1, gpu=2)])
    decision = schedule(state, Submit(job(4, 500, 2, gpu=2)))
    assert decision.started == [3]
    assert [e.wait.cause for e in decision.queue] == ["quota"]


def test_a_never_preempting_deployment_waits_for_free_room_in_priority_order():
    state = ClusterState(
        {"cpu": 10},
        [job(1, 100, cpu=8)],
        [],
        fair=Fairness(now=5, never_preempts=frozenset({2})),
    )
    decision = schedule(state, Submit(job(2, 900, 1, cpu=4)))
    assert decision.started == [] and decision.preempted == {}
    assert decision.queue[0].wait.cause == "no_preempt"
    assert "never preempts" in decision.queue[0].reason
    # The same deployment without the policy preempts.
    plain = schedule(replace(state, fair=Fairness(now=5)), Submit(job(2, 900, 1, cpu=4)))
    assert plain.preempted == {1: 2}
    # It is ahead of lower priority for free room: both fit free, only one fits: it starts.
    state = ClusterState(
        {"cpu": 10},
        [job(1, 100, cpu=6)],
        [job(3, 100, 0, cpu=4)],
        fair=Fairness(now=5, never_preempts=frozenset({2})),
    )
    # (3 is pending only in this hand-made state; the submit decides both.)
    decision = schedule(state, Submit(job(2, 900, 1, cpu=4)))
    assert decision.started == [2] and decision.preempted == {}


def test_the_minimum_run_time_spares_young_work_while_another_choice_exists():
    now = 100 * MIN
    young = job(1, 100, 0, now - MIN, cpu=4)  # started a minute ago
    old = job(2, 100, 0, now - 60 * MIN, cpu=4)  # an hour ago
    fair = Fairness(now=now, min_run=5 * MIN)
    state = ClusterState({"cpu": 8}, [young, old], [], fair=fair)
    decision = schedule(state, Submit(job(3, 900, now, cpu=4)))
    assert decision.preempted == {2: 3}  # the old one, though the plain rule gives back older
    plain = schedule(replace(state, fair=None), Submit(job(3, 900, now, cpu=4)))
    assert plain.preempted == {1: 3}
    # No other choice: the young one is the victim, and its reason says so.
    state = ClusterState({"cpu": 8}, [young, old], [], fair=fair)
    decision = schedule(state, Submit(job(3, 900, now, cpu=8)))
    assert set(decision.preempted) == {1, 2}
    reasons = {e.id: e.reason for e in decision.queue}
    assert "minimum run time" in reasons[1] and "minimum run time" not in reasons[2]


def test_forward_simulation_finds_the_start_at_the_known_ends():
    now = 0
    fair = Fairness(now=now, max_run={1: 40 * MIN, 2: 10 * MIN, 3: 30 * MIN})
    state = ClusterState(
        {"cpu": 4},
        [job(1, 500, 0, 0, cpu=2), job(2, 500, 0, 0, cpu=2)],
        [job(3, 500, 1, cpu=2), job(4, 500, 2, cpu=4)],
        fair=fair,
    )
    sim = simulate(state, frozenset({3, 4}))
    assert sim.starts == {3: 10 * MIN, 4: 40 * MIN}
    # Without a limit on 1, job 4 never starts in the simulation.
    fair = replace(fair, max_run={2: 10 * MIN})
    sim = simulate(replace(state, fair=fair), frozenset({3, 4}))
    assert sim.starts == {3: 10 * MIN} and [j.id for j in sim.unlimited] == [1, 3]


def test_a_starving_large_deployment_gets_a_reservation_and_small_ones_backfill_only_around_it():
    now = 100 * MIN
    fair = Fairness(
        now=now,
        max_run={1: 10 * MIN, 2: 30 * MIN, 5: 5 * MIN},
        starve_after=30 * MIN,
    )
    # cpu 10: 1 (cpu 5, ends now+10m... started at now), 2 (cpu 4, ends now+30m). Big (cpu 6)
    # has waited an hour. Small ones of 1 cpu keep arriving.
    running = [job(1, 500, 0, now, cpu=5), job(2, 500, 0, now, cpu=4)]
    big = job(3, 500, now - 60 * MIN, cpu=6)
    state = ClusterState({"cpu": 10}, running, [big], fair=fair)
    # A small one with no limit would hold room big needs at its start (now + 10 min): held.
    decision = schedule(state, Submit(job(4, 500, now, cpu=1)))
    assert decision.started == [] and decision.reserved == 3
    causes = {e.id: e.wait.cause for e in decision.queue}
    assert causes[4] == "reserved"
    assert "reservation" in {e.id: e.reason for e in decision.queue}[3]
    # Without the guard it starts.
    plain = schedule(
        replace(state, fair=replace(fair, starve_after=None)), Submit(job(4, 500, now, cpu=1))
    )
    assert plain.started == [4]
    # One that ends within 5 minutes (before big's start) backfills.
    decision = schedule(state, Submit(job(5, 500, now, cpu=1)))
    assert decision.started == [5]


# -- properties ----------------------------------------------------------------------------

KINDS = ("cpu", "gpu")
CAPACITY = {"cpu": 8, "gpu": 4}
OWNERS = (0, 1, 2)


@st.composite
def scenarios(draw):
    quotas = draw(
        st.lists(
            st.tuples(
                st.sampled_from(OWNERS),
                st.sampled_from(KINDS),
                st.integers(0, 6),
                st.integers(0, 500),
            ),
            max_size=3,
        )
    )
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("submit"),
                    st.sampled_from(OWNERS),
                    st.sampled_from((0, 100, 500, 900)),
                    st.integers(0, 4),
                    st.integers(0, 3),
                    st.booleans(),  # never preempts
                    st.sampled_from((None, 1, 3, 10)),  # max run, minutes
                ),
                st.tuples(st.just("delete"), st.integers(0, 30)),
                st.tuples(st.just("tick"), st.integers(1, 20)),
            ),
            min_size=1,
            max_size=25,
        )
    )
    return quotas, steps, draw(st.sampled_from((0, 2))), draw(st.sampled_from((None, 1, 5)))


def _fair(now, quota_specs, owner_of, priority_of, never, max_run, min_run, starve):
    quotas = tuple(
        Quota(
            kind,
            limit,
            frozenset(i for i, o in owner_of.items() if o == owner and priority_of[i] >= floor),
        )
        for owner, kind, limit, floor in quota_specs
    )
    return Fairness(
        now=now,
        quotas=quotas,
        never_preempts=frozenset(never),
        max_run=max_run,
        min_run=min_run * MIN,
        starve_after=None if starve is None else starve * MIN,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_sequences_keep_quotas_policies_and_the_plain_rules(scenario):
    quota_specs, steps, min_run, starve = scenario
    running: list[Job] = []
    pending: list[Job] = []
    owner_of: dict[int, int] = {}
    priority_of: dict[int, int] = {}
    never: set[int] = set()
    max_run: dict[int, int] = {}
    now = 0
    next_id = 1
    for step in steps:
        event = None
        if step[0] == "tick":
            now += step[1] * MIN
            event = Reconcile()
        elif step[0] == "delete":
            ids = [j.id for j in running + pending]
            if not ids:
                continue
            event = Delete(frozenset([ids[step[1] % len(ids)]]))
        else:
            _, owner, priority, cpu, gpu, no_preempt, limit = step
            if cpu + gpu == 0:
                continue
            new = Job(next_id, priority, {"cpu": cpu, "gpu": gpu}, now)
            owner_of[next_id], priority_of[next_id] = owner, priority
            if no_preempt:
                never.add(next_id)
            if limit is not None:
                max_run[next_id] = limit * MIN
            next_id += 1
            event = Submit(new)
        fair = _fair(now, quota_specs, owner_of, priority_of, never, max_run, min_run, starve)
        state = ClusterState(CAPACITY, running, pending, fair=fair)
        decision = schedule(state, event)
        before = [j for j in running if not (isinstance(event, Delete) and j.id in event.ids)]
        new_running, new_pending = after(state, decision, event)
        # Quotas: no admitted set takes a quota above its limit.
        assert quota_violations(fair.quotas, before, new_running) == []
        # Non-preempting deployments never evict anyone.
        assert not never.intersection(decision.preempted.values())
        assert not never.intersection(decision.repacked.values())
        # Every pending deployment is in the queue once, in order.
        assert sorted(e.id for e in decision.queue) == sorted(j.id for j in new_pending)
        assert [e.position for e in decision.queue] == list(range(1, len(new_pending) + 1))
        # The plain rules for the deployments not held; rules 4-5 for the transition.
        held = {e.id for e in decision.queue if e.wait.cause in HELD}
        for cause in {e.wait.cause for e in decision.queue if e.wait.cause in HELD}:
            label(f"held: {cause}")
        free_to_run = [j for j in new_pending if j.id not in held]
        problems = violations(CAPACITY, new_running, free_to_run)
        if decision.settle:  # the follow-up Reconcile settles what this decision freed
            decision2 = schedule(
                ClusterState(CAPACITY, new_running, new_pending, fair=fair), Reconcile()
            )
            assert (
                quota_violations(
                    fair.quotas,
                    new_running,
                    after(ClusterState(CAPACITY, new_running, new_pending, fair=fair), decision2)[
                        0
                    ],
                )
                == []
            )
        else:
            assert problems == []
        assert (
            transition_violations(
                before,
                new_running,
                decision.preempted,
                event.job if isinstance(event, Submit) else None,
                repacked=decision.repacked,
            )
            == []
        )
        running, pending = new_running, new_pending


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(1, 8), st.sampled_from((None, 2, 5, 50))), max_size=6),
    st.integers(2, 8),
    st.integers(0, 4),
)
def test_work_started_behind_a_reservation_never_delays_the_reserved_start(
    running_specs, arrivals, big_cpu, extra
):
    """Reservations: whatever starts behind the starving deployment in one decision, the
    simulated start of the starving one is no later than the reservation's."""
    now = 1000 * MIN
    running = [Job(i, 500, {"cpu": c}, 0, now - MIN) for i, (c, _) in enumerate(running_specs, 1)]
    total = sum(c for c, _ in running_specs)
    capacity = {"cpu": max(total + extra, big_cpu)}
    max_run = {i: m * MIN for i, (_, m) in enumerate(running_specs, 1)}
    big = Job(100, 500, {"cpu": big_cpu}, 0)
    pending = [big]
    for n, (cpu, limit) in enumerate(arrivals, 200):
        pending.append(Job(n, 500, {"cpu": min(cpu, capacity["cpu"])}, now - 20 * MIN + n))
        if limit is not None:
            max_run[n] = limit * MIN
    fair = Fairness(now=now, max_run=max_run, starve_after=30 * MIN)
    state = ClusterState(capacity, running, pending, fair=fair)
    decision = schedule(state, Reconcile())
    if decision.reserved != 100 or 100 in decision.started:
        return  # no reservation, or it starts now: nothing can delay it
    label(f"started behind the reservation: {len(decision.started) > 0}")
    alone = simulate(replace(state, pending=[big]), frozenset({100}))
    new_running, _ = after(state, decision)
    later = simulate(replace(state, running=new_running, pending=[big]), frozenset({100}))
    if 100 in alone.starts:
        assert 100 in later.starts and later.starts[100] <= alone.starts[100]

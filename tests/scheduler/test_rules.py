"""Hand-made scenarios for each scheduling rule and every worked example of SCHEDULING.md.

Amounts are base units: cpu in millicores (1 core = 1000), ram in MiB, gpu whole units.
"""

from __future__ import annotations

from app.scheduler import (
    ClusterState,
    Decision,
    Delete,
    Job,
    Reconcile,
    Submit,
    Wait,
    infeasible,
    schedule,
    transition_violations,
    violations,
)

CORE = 1000


def job(
    job_id: int,
    priority: int,
    submitted: int,
    started: int | None = None,
    preempted_by: int | None = None,
    **requests: int,
) -> Job:
    return Job(job_id, priority, requests, submitted, started, preempted_by)


def apply(state: ClusterState, event, decision: Decision, clock: int = 1000) -> ClusterState:
    """The state the service would persist after `decision` (started jobs get a start key)."""
    jobs = {j.id: j for j in (*state.running, *state.pending)}
    if isinstance(event, Submit):
        jobs[event.job.id] = event.job
    deleted = event.ids if isinstance(event, Delete) else frozenset()
    leaving = set(decision.preempted) | set(decision.evicted) | set(deleted)
    running = [j for j in state.running if j.id not in leaving]
    for n, job_id in enumerate(decision.started):
        j = jobs[job_id]
        running.append(Job(j.id, j.priority, j.requests, j.submitted, clock + n, j.preempted_by))
    pending = []
    for entry in decision.queue:
        j = jobs[entry.id]
        by = decision.preempted.get(j.id, j.preempted_by)
        pending.append(Job(j.id, j.priority, j.requests, j.submitted, None, by))
    return ClusterState(state.capacity, running, pending)


def check(state: ClusterState, event, decision: Decision) -> ClusterState:
    after = apply(state, event, decision)
    assert violations(after.capacity, after.running, after.pending) == []
    submitted = event.job if isinstance(event, Submit) else None
    deleted = event.ids if isinstance(event, Delete) else ()
    assert (
        transition_violations(
            state.running,
            after.running,
            decision.preempted,
            submitted,
            capacity=state.capacity,
            deleted=deleted,
        )
        == []
    )
    assert [e.position for e in decision.queue] == list(range(1, len(decision.queue) + 1))
    return after


def entries(decision: Decision) -> list[tuple[int, int, str]]:
    return [(e.id, e.position, e.reason) for e in decision.queue]


def ids(jobs) -> set[int]:
    return {j.id for j in jobs}


# ----------------------------------------------------------------- worked examples


def test_preemption_with_reprieve_and_restart() -> None:
    a = job(1, 100, 1, started=1, cpu=2 * CORE, gpu=1)
    b = job(2, 100, 2, started=2, cpu=2 * CORE, gpu=1)
    state = ClusterState({"cpu": 4 * CORE, "gpu": 2}, [a, b], [])
    c = job(3, 500, 3, cpu=1 * CORE, gpu=1)
    decision = schedule(state, Submit(c))
    assert decision.started == [3]
    assert decision.preempted == {2: 3}  # A started first: it is given back first, B stays a victim
    assert [e.id for e in decision.queue] == [2]
    assert decision.queue[0].reason.startswith("preempted by deployment #3 (priority 500)")
    assert decision.used == {"cpu": 3 * CORE, "gpu": 2}
    after = check(state, Submit(c), decision)
    assert after.pending[0].submitted == 2  # keeps its original submission time

    # Delete C: B fits again and restarts by itself.
    decision = schedule(after, Delete(frozenset({3})))
    assert decision.started == [2]
    assert decision.preempted == {}
    assert decision.queue == []
    check(after, Delete(frozenset({3})), decision)


def test_victims_by_priority_before_utilization() -> None:
    a = job(1, 0, 1, started=1, cpu=5 * CORE)
    b = job(2, 100, 2, started=2, cpu=3 * CORE)
    state = ClusterState({"cpu": 10 * CORE}, [a, b], [])
    h = job(3, 500, 3, cpu=5 * CORE)
    decision = schedule(state, Submit(h))
    assert decision.started == [3]
    assert decision.preempted == {1: 3}  # A, never B, although evicting B packs better
    assert decision.used == {"cpu": 8 * CORE}
    check(state, Submit(h), decision)


def test_best_set_within_a_priority() -> None:
    x = job(9, 100, 0, started=0, cpu=10 * CORE)
    p1 = job(1, 100, 1, cpu=6 * CORE)
    p2 = job(2, 100, 2, cpu=5 * CORE)
    p3 = job(3, 100, 3, cpu=5 * CORE)
    state = ClusterState({"cpu": 10 * CORE}, [x], [p1, p2, p3])
    decision = schedule(state, Delete(frozenset({9})))
    assert decision.started == [2, 3]
    assert entries(decision) == [
        (
            1,
            1,
            "needs 6 cpu cores: 0 cores free, 10 cores held by deployments of priority 100 "
            "or higher",
        )
    ]
    check(state, Delete(frozenset({9})), decision)


def test_across_priorities_not_level_by_level() -> None:
    h1 = job(1, 500, 1, cpu=6 * CORE)
    h2 = job(2, 500, 2, cpu=5 * CORE)
    low = job(3, 100, 3, cpu=5 * CORE)
    state = ClusterState({"cpu": 10 * CORE}, [], [h1, h2, low])
    decision = schedule(state, Reconcile())
    assert decision.started == [2, 3]
    assert [e.id for e in decision.queue] == [1]
    assert decision.queue[0].reason == (
        "needs 6 cpu cores: 0 cores free, 5 cores held by deployments of priority 500 or higher"
    )
    check(state, Reconcile(), decision)


def test_infeasible_requests() -> None:
    capacity = {"cpu": 4 * CORE, "gpu": 2, "ram": 8192}
    assert infeasible(capacity, {"gpu": 3}) == "needs 3 gpu but the cluster has only 2 gpu in total"
    assert infeasible(capacity, {"tpu": 1}) == "this cluster has no tpu"
    assert infeasible(capacity, {}) is not None
    assert infeasible(capacity, {"cpu": 0, "gpu": 0}) is not None
    assert infeasible(capacity, {"cpu": -1}) is not None
    assert infeasible(capacity, {"cpu": 4 * CORE, "gpu": 2, "ram": 8192}) is None
    assert infeasible(capacity, {"cpu": 1500}) is None
    assert infeasible(capacity, {"cpu": 5500}) == (
        "needs 5.5 cpu cores but the cluster has only 4 cores in total"
    )
    assert infeasible(capacity, {"ram": 9216}) == (
        "needs 9 GiB of ram but the cluster has only 8 GiB in total"
    )


def test_infeasible_job_submitted_anyway_stays_queued_with_its_reason() -> None:
    state = ClusterState({"cpu": 4 * CORE}, [], [])
    decision = schedule(state, Submit(job(1, 100, 1, gpu=1)))
    assert decision.started == []
    assert entries(decision) == [(1, 1, "this cluster has no gpu")]
    assert decision.queue[0].wait == Wait(
        "infeasible", "gpu", 1, 0, 0, 100, message="this cluster has no gpu"
    )


# ----------------------------------------------------------------- rules one by one


def test_rule1_capacity_is_exact_integers() -> None:
    jobs = [job(i, 100, i, cpu=100) for i in range(1, 12)]  # 0.1 cpu each
    state = ClusterState({"cpu": 1 * CORE}, [], jobs)
    decision = schedule(state, Reconcile())
    assert decision.used == {"cpu": 1000}
    assert decision.started == list(range(1, 11))
    assert [e.id for e in decision.queue] == [11]


def test_rule1_reconcile_after_capacity_cut_evicts_least_important() -> None:
    running = [
        job(1, 500, 1, started=1, cpu=2 * CORE),
        job(2, 100, 2, started=2, cpu=2 * CORE),
        job(3, 100, 3, started=3, cpu=1 * CORE),
    ]
    state = ClusterState({"cpu": 3 * CORE}, running, [])
    decision = schedule(state, Reconcile())
    # Remove 3 then 2 (least important first), then give back 3 (fits): 2 is evicted.
    assert decision.evicted == [2]
    assert decision.preempted == {}
    assert decision.used == {"cpu": 3 * CORE}
    assert [e.id for e in decision.queue] == [2]


def test_rule2_work_conserving_submit_fits_free() -> None:
    state = ClusterState({"cpu": 4 * CORE}, [job(1, 100, 1, started=1, cpu=2 * CORE)], [])
    decision = schedule(state, Submit(job(2, 0, 2, cpu=2 * CORE)))
    assert decision.started == [2]
    assert decision.used == {"cpu": 4 * CORE}


def test_rule2_reconcile_starts_what_fits() -> None:
    state = ClusterState({"cpu": 4 * CORE}, [], [job(1, 0, 1, cpu=CORE), job(2, 5, 2, cpu=CORE)])
    decision = schedule(state, Reconcile())
    assert decision.started == [2, 1]  # queue order


def test_rule3_no_inversion_submit_waits_behind_higher_priority() -> None:
    running = [job(1, 500, 1, started=1, cpu=3 * CORE)]
    state = ClusterState({"cpu": 4 * CORE}, running, [])
    decision = schedule(state, Submit(job(2, 500, 2, cpu=2 * CORE)))
    assert decision.started == []
    assert decision.preempted == {}
    assert entries(decision) == [
        (
            2,
            1,
            "needs 2 cpu cores: 1 core free, 3 cores held by deployments of priority 500 or higher",
        )
    ]
    assert decision.queue[0].wait == Wait("blocked", "cpu", 2 * CORE, CORE, 3 * CORE, 500, (1,))


def test_equal_priority_never_preempts() -> None:
    running = [job(1, 100, 1, started=1, cpu=4 * CORE)]
    state = ClusterState({"cpu": 4 * CORE}, running, [])
    decision = schedule(state, Submit(job(2, 100, 2, cpu=1 * CORE)))
    assert decision.started == []
    assert decision.preempted == {}
    assert decision.queue[0].reason == (
        "needs 1 cpu core: 0 cores free, 4 cores held by deployments of priority 100 or higher"
    )


def test_lower_priority_never_preempts() -> None:
    running = [job(1, 100, 1, started=1, cpu=4 * CORE)]
    state = ClusterState({"cpu": 4 * CORE}, running, [])
    decision = schedule(state, Submit(job(2, 50, 2, cpu=1 * CORE)))
    assert decision.started == [] and decision.preempted == {}


def test_preemption_takes_lowest_priority_first_and_fewest() -> None:
    running = [
        job(1, 10, 1, started=1, cpu=2 * CORE),
        job(2, 20, 2, started=2, cpu=2 * CORE),
        job(3, 30, 3, started=3, cpu=2 * CORE),
    ]
    state = ClusterState({"cpu": 6 * CORE}, running, [])
    h = job(4, 900, 4, cpu=3 * CORE)
    decision = schedule(state, Submit(h))
    # Reprieve 3, then 2 (cpu 7 > 6? 2+2+3 = 7 > 6: no) -> 2 and 1 are victims? Check: after
    # removing all, give back 3 (3+2=5 fits), then 2 (7 > 6: victim), then 1 (7 > 6: victim).
    assert decision.preempted == {1: 4, 2: 4}
    assert decision.started == [4]
    check(state, Submit(h), decision)


def test_preemption_minimal_victims() -> None:
    running = [
        job(1, 10, 1, started=1, cpu=1 * CORE),
        job(2, 10, 2, started=2, cpu=3 * CORE),
    ]
    state = ClusterState({"cpu": 4 * CORE}, running, [])
    h = job(3, 900, 3, cpu=3 * CORE)
    decision = schedule(state, Submit(h))
    # Give back 1 first (earlier start): 1+3 = 4 fits; 2 is the only victim.
    assert decision.preempted == {2: 3}
    check(state, Submit(h), decision)


def test_preemption_cascade_victim_preempts_lower_in_turn() -> None:
    # gpu-heavy low-priority job is pushed out by a mid job that a high job displaced.
    running = [
        job(1, 100, 1, started=1, cpu=2 * CORE),  # mid
        job(2, 10, 2, started=2, gpu=2),  # low, holds all gpu
    ]
    state = ClusterState({"cpu": 2 * CORE, "gpu": 2}, running, [])
    h = job(3, 900, 3, cpu=2 * CORE)
    decision = schedule(state, Submit(h))
    assert decision.started == [3]
    assert decision.preempted == {1: 3}
    after = check(state, Submit(h), decision)
    # Now a mid-priority job wanting gpu, queued: fits its room_for only by evicting job 2.
    mid = job(4, 100, 4, gpu=2)
    decision = schedule(after, Submit(mid))
    assert decision.started == [4]
    assert decision.preempted == {2: 4}
    check(after, Submit(mid), decision)


def test_submit_requiring_several_preemptions_and_cascade_ends_valid() -> None:
    running = [job(i, i, i, started=i, cpu=CORE, gpu=1 if i % 2 else 0) for i in range(1, 7)]
    state = ClusterState({"cpu": 6 * CORE, "gpu": 3}, running, [job(20, 3, 20, gpu=3)])
    h = job(30, 800, 30, cpu=4 * CORE, gpu=2)
    decision = schedule(state, Submit(h))
    assert 30 in decision.started
    assert all(v < 30 for v in decision.preempted)
    check(state, Submit(h), decision)


def test_delete_can_require_preemption() -> None:
    # A high job waits behind another high job; a low job fills the rest. Deleting the running
    # high job makes room_for(waiting high) big enough only by evicting the low one.
    running = [
        job(1, 500, 1, started=1, cpu=3 * CORE),
        job(2, 100, 2, started=2, cpu=1 * CORE),
    ]
    waiting = job(3, 500, 3, cpu=4 * CORE)
    state = ClusterState({"cpu": 4 * CORE}, running, [waiting])
    assert violations(state.capacity, state.running, state.pending) == []
    decision = schedule(state, Delete(frozenset({1})))
    assert decision.started == [3]
    assert decision.preempted == {2: 3}
    check(state, Delete(frozenset({1})), decision)


def test_no_preemption_when_admissions_from_free_restore_rule3() -> None:
    # H1 would need to evict L, but admitting H2 from free blocks H1 without any eviction.
    low = job(1, 100, 1, started=1, cpu=5 * CORE)
    blocker = job(9, 500, 0, started=0, cpu=5 * CORE)
    h1 = job(2, 500, 2, cpu=6 * CORE)
    h2 = job(3, 500, 3, cpu=5 * CORE)
    state = ClusterState({"cpu": 10 * CORE}, [blocker, low], [h1, h2])
    decision = schedule(state, Delete(frozenset({9})))
    assert decision.preempted == {}
    assert decision.started == [3]
    check(state, Delete(frozenset({9})), decision)


def test_preemption_when_no_admission_can_block() -> None:
    # Free 10 of 15: H1 and H2 cannot both start, and either alone leaves the other fitting in
    # its room_for (by evicting L): preemption is needed. The walk starts H1, H2 evicts L.
    low = job(1, 100, 1, started=1, cpu=5 * CORE)
    blocker = job(9, 500, 0, started=0, cpu=10 * CORE)
    h1 = job(2, 500, 2, cpu=6 * CORE)
    h2 = job(3, 500, 3, cpu=5 * CORE)
    state = ClusterState({"cpu": 15 * CORE}, [blocker, low], [h1, h2])
    decision = schedule(state, Delete(frozenset({9})))
    assert decision.preempted == {1: 3}
    assert decision.started == [2, 3]
    check(state, Delete(frozenset({9})), decision)


def test_victim_restarts_with_original_submission_and_position() -> None:
    running = [job(1, 100, 5, started=6, cpu=2 * CORE)]
    queued = [job(2, 100, 7, cpu=2 * CORE)]  # same priority, submitted after victim-to-be
    state = ClusterState({"cpu": 2 * CORE}, running, queued)
    h = job(3, 900, 8, cpu=2 * CORE)
    decision = schedule(state, Submit(h))
    assert decision.preempted == {1: 3}
    assert [e.id for e in decision.queue] == [1, 2]  # original submission time 5 < 7
    after = check(state, Submit(h), decision)
    decision = schedule(after, Delete(frozenset({3})))
    assert decision.started == [1]
    assert decision.queue[0].id == 2
    check(after, Delete(frozenset({3})), decision)


def test_delete_pending_only_changes_queue() -> None:
    running = [job(1, 100, 1, started=1, cpu=2 * CORE)]
    pending = [job(i, 100, i, cpu=2 * CORE) for i in range(2, 6)]
    state = ClusterState({"cpu": 2 * CORE}, running, pending)
    decision = schedule(state, Delete(frozenset({3, 4})))
    assert decision.started == [] and decision.preempted == {}
    assert [(e.id, e.position) for e in decision.queue] == [(2, 1), (5, 2)]


def test_delete_all_empties_the_cluster() -> None:
    running = [job(1, 100, 1, started=1, cpu=2 * CORE), job(2, 5, 2, started=2, gpu=1)]
    pending = [job(3, 100, 3, cpu=2 * CORE)]
    state = ClusterState({"cpu": 2 * CORE, "gpu": 1}, running, pending)
    decision = schedule(state, Delete(frozenset({1, 2, 3})))
    assert decision == Decision(started=[], preempted={}, queue=[], used={"cpu": 0, "gpu": 0})


def test_delete_running_and_pending_together() -> None:
    running = [job(1, 100, 1, started=1, cpu=2 * CORE)]
    pending = [job(2, 100, 2, cpu=2 * CORE), job(3, 100, 3, cpu=2 * CORE)]
    state = ClusterState({"cpu": 2 * CORE}, running, pending)
    decision = schedule(state, Delete(frozenset({1, 2})))
    assert decision.started == [3]
    assert decision.queue == []


def test_queue_order_priority_then_submitted_then_id() -> None:
    running = [job(1, 1000, 0, started=0, cpu=CORE)]
    pending = [
        job(5, 10, 3, cpu=CORE),
        job(4, 50, 9, cpu=CORE),
        job(3, 10, 3, cpu=CORE),
        job(2, 10, 1, cpu=CORE),
    ]
    state = ClusterState({"cpu": CORE}, running, pending)
    decision = schedule(state, Reconcile())
    assert [e.id for e in decision.queue] == [4, 2, 3, 5]


def test_reasons_text() -> None:
    capacity = {"cpu": 4 * CORE, "gpu": 4, "ram": 4096}
    running = [
        job(1, 500, 1, started=1, gpu=3, ram=512),
        job(2, 100, 2, started=2, cpu=CORE, ram=1024),
    ]
    pending = [job(3, 500, 3, gpu=2), job(4, 100, 4, ram=3584)]
    state = ClusterState(capacity, running, pending)
    decision = schedule(state, Reconcile())
    reasons = {e.id: e.reason for e in decision.queue}
    assert (
        reasons[3] == "needs 2 gpu: 1 gpu free, 3 gpu held by deployments of priority 500 or higher"
    )
    assert reasons[4] == (
        "needs 3.5 GiB of ram: 2.5 GiB free, 1.5 GiB held by deployments of priority 100 or higher"
    )


def test_reason_fractional_cpu_and_small_ram() -> None:
    running = [job(1, 7, 1, started=1, cpu=1500, ram=700)]
    state = ClusterState({"cpu": 2 * CORE, "ram": 1024}, running, [])
    decision = schedule(state, Submit(job(2, 7, 2, cpu=600, ram=100)))
    assert decision.queue[0].reason == (
        "needs 600m cpu: 500m cpu free, 1.5 cores held by deployments of priority 7 or higher"
    )
    decision = schedule(state, Submit(job(3, 7, 3, cpu=100, ram=400)))
    assert decision.queue[0].reason == (
        "needs 400 MiB of ram: 324 MiB free, 700 MiB held by deployments of priority 7 or higher"
    )


def test_preempted_reason_names_what_is_short() -> None:
    running = [job(1, 1, 1, started=1, cpu=4 * CORE)]
    state = ClusterState({"cpu": 4 * CORE}, running, [])
    decision = schedule(state, Submit(job(42, 900, 2, cpu=CORE)))
    assert entries(decision) == [
        (
            1,
            1,
            "preempted by deployment #42 (priority 900); restarts by itself once 4 cpu cores "
            "are free",
        )
    ]
    assert decision.queue[0].wait == Wait(
        "preempted", "cpu", 4 * CORE, 3 * CORE, CORE, 1, (42,), 0, 42, 900
    )


def test_submit_duplicate_id_is_rejected() -> None:
    state = ClusterState({"cpu": CORE}, [job(1, 1, 1, started=1, cpu=CORE)], [])
    try:
        schedule(state, Submit(job(1, 1, 2, cpu=CORE)))
    except ValueError:
        pass
    else:
        raise AssertionError("duplicate id accepted")


def test_reconcile_repairs_priority_inversion_by_preemption() -> None:
    running = [job(1, 1, 1, started=1, cpu=4 * CORE)]
    pending = [job(2, 900, 2, cpu=2 * CORE)]
    state = ClusterState({"cpu": 4 * CORE}, running, pending)
    decision = schedule(state, Reconcile())
    assert decision.started == [2]
    assert decision.preempted == {1: 2}


def test_wait_names_the_largest_holders_of_priority_at_least_its_own() -> None:
    """ "needs 2 gpu: 1 free, 3 held by #12, #14 (priority >= 500)", as data: the holders are
    the running deployments of at least the waiting one's priority holding the short kind,
    largest first and ties by id, at most BLOCKERS_LISTED named and the rest counted."""
    running = [
        job(12, 500, 1, started=1, gpu=2),
        job(14, 900, 2, started=2, gpu=1, cpu=CORE),
        job(15, 100, 3, started=3, cpu=CORE),  # below 500: holds room the waiting one may take
        job(16, 500, 4, started=4, cpu=CORE),  # holds no gpu
    ]
    state = ClusterState({"cpu": 4 * CORE, "gpu": 4}, running, [])
    decision = schedule(state, Submit(job(20, 500, 5, gpu=2)))
    assert decision.started == []
    wait = decision.queue[0].wait
    assert wait == Wait("blocked", "gpu", 2, 1, 3, 500, (12, 14), 0)
    assert decision.queue[0].reason == (
        "needs 2 gpu: 1 gpu free, 3 gpu held by deployments of priority 500 or higher"
    )
    assert wait.to_dict()["blocking_ids"] == [12, 14]

    many = [job(100 + i, 500, i, started=i, gpu=1) for i in range(8)]
    state = ClusterState({"gpu": 8}, many, [])
    wait = schedule(state, Submit(job(200, 500, 20, gpu=1))).queue[0].wait
    assert wait.blocking_ids == (100, 101, 102, 103, 104)
    assert wait.blocking_more == 3

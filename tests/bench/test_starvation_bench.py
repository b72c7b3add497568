"""The starvation benchmark runs, and its numbers are the replay's own (a smoke run)."""

from __future__ import annotations

from bench import starvation_bench


def test_the_quick_run_reports_both_policies_with_waits_and_utilization():
    output = starvation_bench.main(["--quick"])
    policies = {row["policy"] for row in output["rows"]}
    assert policies == {"no guard", "guard"}
    for row in output["rows"]:
        assert 0 < row["utilization"] <= 1
        assert row["large_max_min"] >= row["large_p99_min"] >= 0
        assert row["large_count"] + row["small_count"] == output["settings"]["arrivals"]


def test_the_guard_reserves_for_a_large_deployment_behind_small_ones():
    jobs = [
        {"id": 1, "at": 0, "cpu": 5, "limit": 600, "run": 600},
        {"id": 2, "at": 1, "cpu": 5, "limit": 600, "run": 300},
        {"id": 3, "at": 2, "cpu": 6, "limit": 600, "run": 60},
    ]
    # Small ones keep arriving while 3 waits; without the guard they take every gap.
    jobs += [
        {"id": 4 + n, "at": 290 + 300 * n, "cpu": 5, "limit": 600, "run": 600} for n in range(8)
    ]
    without = starvation_bench.replay(jobs, None)
    with_guard = starvation_bench.replay(jobs, 60)
    assert with_guard["large_max_min"] < without["large_max_min"]

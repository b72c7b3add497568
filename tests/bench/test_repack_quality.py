"""The opt-in repack reaches 0.98 of OPT_NI on the benchmark's hardest seeds.

With a heuristic allowance of 2,000 steps for choices of more than 20 classes, the repack's
choice (its movable running work makes many classes) missed arrangements worth several
points: load-1.5 seed 5 averaged 0.968 of OPT_NI and whales seed 4 0.968. A repack may now
use the decision's whole budget. The benchmark's own replay, with its CP-SAT references.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ortools")

from bench import scheduler_bench
from bench.workloads import scenarios


@pytest.mark.parametrize(("scenario", "seed"), [("load-1.5", 5), ("whales", 4)])
def test_the_repack_reaches_098_of_opt_ni_on_the_hardest_seeds(scenario, seed):
    (trace,) = scenarios(160, seed, [scenario])
    result = scheduler_bench.replay(trace, ref_every=8, time_limit=5.0, workers=1)
    repack = result["policies"]["kargo-repack"]
    assert repack["inversions"] == 0 and repack["same_or_lower_priority_evictions"] == 0
    assert repack["u_over_opt_ni"]["mean"] >= 0.98

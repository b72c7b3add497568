"""Scheduler benchmark: Kargo's scheduler against its peers and exact CP-SAT references.

    .venv/bin/python bench/scheduler_bench.py                 # default: 5 seeds, a few minutes
    .venv/bin/python bench/scheduler_bench.py --quick         # seconds: a smoke run for tests
    .venv/bin/python bench/scheduler_bench.py --seeds 1 2 3   # other seeds
    .venv/bin/python bench/scheduler_bench.py --export-traces # also write the traces (JSON lines)
    .venv/bin/python bench/scheduler_bench.py --replay bench/results/traces.jsonl

Every policy replays the same traces (bench/workloads.py) in the same simulator
(bench/policies.py); after every event the independent checker (bench/metrics.py) counts
inversions, work-conservation misses, capacity violations and evictions; on a sample of
decision points the CP-SAT references (bench/reference.py) give:

  * OPT_NI(t): max U over every inversion-free state of the deployments present after event t
    (capacity, count limit, no inversion, work conservation), free to evict anything. It depends
    only on the trace, so every policy is divided by the same number.
  * OPT_cap(t): max U by capacity (and the count limit) alone, the repack-everything bound: what
    any placement of the deployments present could use, inversions allowed.
  * OPT_stable(t): OPT_NI keeping P(t) = Kargo's running set before event t, minus the
    deployment event t deletes, minus the victims Kargo's decision preempts (each checked by the
    independent checker to be preempted by a strictly higher-priority deployment that starts).
    This is exactly the freedom rule 7 leaves Kargo once rules 4 and 5 are applied, so it is
    reported for Kargo only.

Each scenario runs on several seeds (5 by default); tables give, per scenario and policy, the
mean over seeds and the worst seed, and targets are judged on every seed. Time-averaged
utilization is taken over [first event, last submission]. Queue wait is first start minus
submission; a deployment that never started counts with its whole life.

Decision latency (bench/latency.py) is measured on synthetic single-cluster states of 10 to
10,000 deployments and on adversarial cases. Writes scheduler.json and PNG plots to --out
(default bench/results/) and copies the plots to docs/img/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.scheduler import Job  # noqa: E402
from bench import latency, reference  # noqa: E402
from bench.metrics import (  # noqa: E402
    TimeAverage,
    check_snapshot,
    check_transition,
    priority_greedy,
    quantile,
    summary,
)
from bench.policies import BENCH_REPACK, DEFAULT_REPACK, ClusterSim, all_policies  # noqa: E402
from bench.workloads import SCENARIOS, Trace, read_traces, scenarios, write_traces  # noqa: E402

KARGO = "kargo"
REPACK = "kargo-repack"
PLOT_TRACE = "load-1.5"
LATENCY_SIZES = (10, 100, 1_000, 10_000)
ADVERSARIAL_SIZES = (1_000, 10_000)
QUICK_SCENARIOS = ("load-1.5", "distinct", "knapsack", "8-kinds")


# --------------------------------------------------------------------------------------------
# Replaying one trace with every policy.


class PolicyRun:
    """Everything measured for one policy on one trace."""

    def __init__(self, name: str, kinds: Sequence[str]) -> None:
        self.name = name
        self.kinds = list(kinds)
        self.usage = TimeAverage(len(kinds))
        self.timeline: list[tuple[float, float]] = []
        self.first_start: dict[int, float] = {}
        self.decisions = 0
        self.inversions = 0  # summed over decisions: pending jobs inverted after the decision
        self.decisions_with_inversion = 0
        self.first_inversion: dict[str, object] | None = None
        self.work_misses = 0
        self.capacity_violations = 0
        self.evictions = 0
        self.repacks = 0
        self.bad_evictions = 0
        self.ratio_ni: list[float] = []
        self.ratio_cap: list[float] = []
        self.ratio_stable: list[float] = []
        self.greedy_matches = 0
        self.greedy_checked = 0
        self.error: str | None = None


def replay(trace: Trace, ref_every: int, time_limit: float, workers: int) -> dict[str, object]:
    """Run every policy over `trace`; solve the references every `ref_every` decisions."""
    kinds = sorted(trace.capacity)
    policies = all_policies()
    sims = {p.name: ClusterSim(trace.capacity, trace.max_deployments) for p in policies}  # type: ignore[attr-defined]
    runs = {p.name: PolicyRun(p.name, kinds) for p in policies}  # type: ignore[attr-defined]
    present: dict[int, Job] = {}
    submitted_at: dict[int, float] = {}
    deleted_at: dict[int, float] = {}
    rejected: set[int] = set()
    submit_times = [e.time for e in trace.events if e.op == "submit"]
    window_end = max(submit_times) if submit_times else 0.0
    distinct = len({e.priority for e in trace.events if e.op == "submit"}) > 10
    refs: dict[str, list[dict[str, object]]] = {"ni": [], "cap": [], "stable": []}
    decisions = 0

    for index, event in enumerate(trace.events):
        job: Job | None = None
        if event.op == "submit":
            if trace.max_deployments is not None and len(present) >= trace.max_deployments:
                rejected.add(event.id)  # rule 9: the service rejects it, for every policy alike
                continue
            job = Job(event.id, event.priority, dict(event.requests), index)
            present[job.id] = job
            submitted_at[job.id] = event.time
        else:
            if event.id not in present:
                continue
            del present[event.id]
            deleted_at[event.id] = event.time
        decisions += 1
        protected: set[int] | None = None

        for policy in policies:
            run, sim = runs[policy.name], sims[policy.name]  # type: ignore[attr-defined]
            if run.error:
                continue
            deleted = sim.remove(event.id) if job is None else None
            before = dict(sim.running)
            sim.now = event.time
            try:
                outcome = policy.decide(sim, job, deleted)  # type: ignore[attr-defined]
                sim.apply(outcome, job)
            except Exception:  # a crash of the policy under test is a result, not an abort
                run.error = f"event {index} ({event.op} #{event.id}): {traceback.format_exc()}"
                continue
            run.decisions += 1
            snap = check_snapshot(trace.capacity, sim.running.values(), sim.pending.values())
            run.capacity_violations += snap.capacity_violations
            run.work_misses += snap.work_conservation_misses
            run.inversions += snap.inversions
            if snap.inversions:
                run.decisions_with_inversion += 1
                if run.first_inversion is None:
                    run.first_inversion = {"event": index, "ids": snap.inverted_ids[:10]}
            evictions, bad = check_transition(
                before,
                sim.running,
                outcome.preempted,
                event.id if job is None else None,
                outcome.repacked,
            )
            run.evictions += evictions
            run.repacks += len(outcome.repacked)
            run.bad_evictions += bad
            for started in outcome.started:
                run.first_start.setdefault(started, event.time)
            used = sim.used()
            if event.time <= window_end:
                run.usage.observe(event.time, [u / c for u, c in zip(used, sim.cap, strict=True)])
            run.timeline.append((event.time, sim.utilization() / len(kinds)))
            if policy.name == KARGO:  # type: ignore[attr-defined]
                protected = set(before) - set(outcome.preempted)
            if distinct:
                run.greedy_checked += 1
                greedy = priority_greedy(trace.capacity, present.values())
                run.greedy_matches += set(sim.running) == greedy

        if ref_every and decisions % ref_every == 0 and present:
            jobs = list(present.values())
            solve = reference.solve
            ni = solve(trace.capacity, jobs, (), trace.max_deployments, time_limit, workers)
            cap = solve(trace.capacity, jobs, (), trace.max_deployments, time_limit, workers, True)
            refs["ni"].append(_ref_row(index, ni))
            refs["cap"].append(_ref_row(index, cap))
            for run in runs.values():
                if run.error:
                    continue
                if ni.value > 0:
                    run.ratio_ni.append(sims[run.name].utilization() / ni.value)
                if cap.value > 0:
                    run.ratio_cap.append(sims[run.name].utilization() / cap.value)
            if protected is not None and not runs[KARGO].error:
                stable = solve(
                    trace.capacity, jobs, protected, trace.max_deployments, time_limit, workers
                )
                row = _ref_row(index, stable)
                row["kargo_u"] = sims[KARGO].utilization()
                refs["stable"].append(row)
                if stable.value > 0:
                    runs[KARGO].ratio_stable.append(sims[KARGO].utilization() / stable.value)

    results: dict[str, object] = {}
    for policy in policies:
        run = runs[policy.name]  # type: ignore[attr-defined]
        result = _policy_result(run, trace, submitted_at, deleted_at, distinct, window_end)
        if hasattr(policy, "inexact"):
            result["inexact_decisions"] = policy.inexact
        if hasattr(policy, "cpu_ms"):
            result["decision_cpu_ms"] = list(policy.cpu_ms)
        results[run.name] = result
    return {
        "description": trace.description,
        "params": trace.params,
        "capacity": trace.capacity,
        "max_deployments": trace.max_deployments,
        "submissions": trace.submissions,
        "window_end": window_end,
        "rejected": len(rejected),
        "decisions": decisions,
        "policies": results,
        "references": _ref_summary(refs),
        "timelines": {run.name: run.timeline for run in runs.values()},
        "reference_points": refs,
    }


def _ref_row(index: int, ref: reference.Reference) -> dict[str, object]:
    return {
        "event": index,
        "status": ref.status,
        "value": ref.value,
        "bound": ref.bound,
        "seconds": round(ref.seconds, 4),
    }


def _ref_summary(refs: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, rows in refs.items():
        seconds = [float(r["seconds"]) for r in rows]  # type: ignore[arg-type]
        out[name] = {
            "solved": len(rows),
            "optimal": sum(1 for r in rows if r["status"] == "optimal"),
            "not_optimal": sum(1 for r in rows if r["status"] != "optimal"),
            "seconds_mean": sum(seconds) / len(seconds) if seconds else math.nan,
            "seconds_max": max(seconds) if seconds else math.nan,
        }
    return out


def _tier_label(priority: int, distinct: bool) -> str:
    return "all" if distinct else str(priority)


def _policy_result(
    run: PolicyRun,
    trace: Trace,
    submitted_at: dict[int, float],
    deleted_at: dict[int, float],
    distinct: bool,
    end: float,
) -> dict[str, object]:
    averages = run.usage.averages(end)
    priority_of = {e.id: e.priority for e in trace.events if e.op == "submit"}
    waits: dict[str, list[float]] = defaultdict(list)
    never: dict[str, int] = defaultdict(int)
    for job_id, submitted in submitted_at.items():
        tier = _tier_label(priority_of[job_id], distinct)
        started = run.first_start.get(job_id)
        if started is None:
            never[tier] += 1  # censored: it waited its whole life
            waits[tier].append(deleted_at[job_id] - submitted)
        else:
            waits[tier].append(started - submitted)
    wait_rows = {
        tier: {
            "jobs": len(values),
            "never_started": never[tier],
            "p50": quantile(values, 0.5),
            "p99": quantile(values, 0.99),
            "max": max(values),
        }
        for tier, values in sorted(waits.items(), key=lambda kv: _tier_sort(kv[0]))
    }
    result: dict[str, object] = {
        "error": run.error,
        "decisions": run.decisions,
        "utilization": {k: a for k, a in zip(run.kinds, averages, strict=True)},
        "utilization_mean": sum(averages) / len(averages),
        "u_over_opt_ni": summary(run.ratio_ni),
        "u_over_opt_cap": summary(run.ratio_cap),
        "u_over_opt_stable": summary(run.ratio_stable) if run.name == KARGO else None,
        "inversions": run.inversions,
        "decisions_with_inversion": run.decisions_with_inversion,
        "first_inversion": run.first_inversion,
        "work_conservation_misses": run.work_misses,
        "capacity_violations": run.capacity_violations,
        "evictions": run.evictions,
        "repacks": run.repacks,
        "evictions_per_decision": run.evictions / run.decisions if run.decisions else 0.0,
        "same_or_lower_priority_evictions": run.bad_evictions,
        "queue_wait": wait_rows,
        "ratios_ni": run.ratio_ni,
        "ratios_stable": run.ratio_stable,
    }
    if distinct:
        result["greedy_match"] = {"matches": run.greedy_matches, "checked": run.greedy_checked}
    return result


def _tier_sort(tier: str) -> float:
    return -float(tier) if tier.lstrip("-").isdigit() else 0.0


# --------------------------------------------------------------------------------------------
# Seeds: per scenario and policy, the mean over seeds and the worst seed.

SEED_METRICS = (
    "utilization_mean",
    "u_over_opt_ni.mean",
    "u_over_opt_ni.min",
    "u_over_opt_cap.mean",
    "u_over_opt_stable.mean",
    "u_over_opt_stable.min",
    "evictions_per_decision",
)


def _get(result: dict[str, object], path: str) -> float:
    value: object = result
    for part in path.split("."):
        if not isinstance(value, dict):
            return math.nan
        value = value.get(part)
    return float(value) if isinstance(value, int | float) else math.nan


def across_seeds(by_seed: dict[str, dict[str, object]]) -> dict[str, object]:
    """Per scenario and policy: each metric's mean over seeds and worst (lowest) seed, and the
    sums of inversions, misses, evictions and bad evictions over seeds."""
    table: dict[str, object] = {}
    first = next(iter(by_seed.values()))
    for name in first["scenarios"]:  # type: ignore[union-attr]
        rows: dict[str, object] = {}
        policies = first["scenarios"][name]["policies"]  # type: ignore[index]
        for policy in policies:
            per_seed = [
                seed_results["scenarios"][name]["policies"][policy]  # type: ignore[index]
                for seed_results in by_seed.values()
            ]
            row: dict[str, object] = {"seeds": len(per_seed)}
            for metric in SEED_METRICS:
                values = [v for v in (_get(r, metric) for r in per_seed) if not math.isnan(v)]
                row[metric] = {
                    "mean": sum(values) / len(values) if values else math.nan,
                    "worst": min(values) if values else math.nan,
                    "best": max(values) if values else math.nan,
                }
            for total in ("inversions", "work_conservation_misses", "capacity_violations",
                          "evictions", "repacks", "same_or_lower_priority_evictions",
                          "decisions"):  # fmt: skip
                row[total] = sum(int(r[total]) for r in per_seed)  # type: ignore[call-overload]
            row["errors"] = [r["error"] for r in per_seed if r["error"]]
            if "inexact_decisions" in per_seed[0]:
                row["inexact_decisions"] = sum(int(r["inexact_decisions"]) for r in per_seed)  # type: ignore[call-overload]
            if "decision_cpu_ms" in per_seed[0]:
                times = [t for r in per_seed for t in r["decision_cpu_ms"]]  # type: ignore[attr-defined]
                row["decision_cpu_ms"] = {
                    "p50": quantile(times, 0.5),
                    "p99": quantile(times, 0.99),
                    "max": max(times, default=math.nan),
                }
            if "greedy_match" in per_seed[0]:
                row["greedy_match"] = {
                    "matches": sum(r["greedy_match"]["matches"] for r in per_seed),  # type: ignore[index]
                    "checked": sum(r["greedy_match"]["checked"] for r in per_seed),  # type: ignore[index]
                }
            rows[policy] = row
        table[name] = rows
    return table


# --------------------------------------------------------------------------------------------
# Targets, output.


def evaluate_targets(results: dict[str, object]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def add(name: str, value: object, target: str, ok: bool) -> None:
        rows.append({"target": name, "value": value, "goal": target, "pass": bool(ok)})

    by_seed = results["by_seed"]
    seeds = list(by_seed)  # type: ignore[arg-type]
    table = results["across_seeds"]
    for name, policies in table.items():  # type: ignore[union-attr]
        kargo = policies[KARGO]
        per_seed = [by_seed[s]["scenarios"][name]["policies"][KARGO] for s in seeds]  # type: ignore[index]
        add(f"{name}: kargo runs without error", len(kargo["errors"]), "0", not kargo["errors"])
        add(f"{name}: kargo inversions, all seeds", kargo["inversions"], "0",
            kargo["inversions"] == 0)  # fmt: skip
        bad = kargo["same_or_lower_priority_evictions"]
        add(f"{name}: kargo same-or-lower-priority evictions", bad, "0", bad == 0)
        stable = [r["u_over_opt_stable"] for r in per_seed if r["u_over_opt_stable"]["n"]]
        if stable:
            worst_mean = min(s["mean"] for s in stable)
            worst_min = min(s["min"] for s in stable)
            add(f"{name}: kargo mean U/OPT_stable, worst seed", round(worst_mean, 4), ">= 0.99",
                worst_mean >= 0.99)  # fmt: skip
            add(f"{name}: kargo min U/OPT_stable, worst seed", round(worst_min, 4), ">= 0.97",
                worst_min >= 0.97)  # fmt: skip
        if REPACK in policies:
            repack = policies[REPACK]
            per_repack = [by_seed[s]["scenarios"][name]["policies"][REPACK] for s in seeds]  # type: ignore[index]
            ni = [r["u_over_opt_ni"]["mean"] for r in per_repack if r["u_over_opt_ni"]["n"]]
            if ni:
                worst = min(ni)
                add(f"{name}: kargo-repack mean U/OPT_NI, worst seed", round(worst, 4), ">= 0.98",
                    worst >= 0.98)  # fmt: skip
            add(f"{name}: kargo-repack inversions", repack["inversions"], "0",
                repack["inversions"] == 0)  # fmt: skip
            bad = repack["same_or_lower_priority_evictions"]
            add(f"{name}: kargo-repack evictions outside the rules", bad, "0", bad == 0)
    typical: dict = results.get("latency") or {}  # type: ignore[assignment]
    for size, limit in (("1000", 1.0), ("10000", 10.0)):
        per_seed = [by_size[size] for by_size in typical.values() if size in by_size]
        if per_seed:
            for op in per_seed[0]["cpu"]:
                p99s = [seed_row["cpu"][op]["p99"] for seed_row in per_seed]
                worst = max(p99s)
                cells = " / ".join(f"{p:.2f}" for p in p99s)
                add(f"latency p99 {op} at {size} (CPU, queue built), worst seed of {cells}",
                    f"{worst:.3f} ms", f"< {limit} ms", worst < limit)  # fmt: skip
    adversarial: dict = results.get("adversarial") or {}  # type: ignore[assignment]
    cases = [(name, case) for by_case in adversarial.values() for name, case in by_case.items()]
    if cases:
        which, case = max(cases, key=lambda item: item[1]["cpu"]["max"])
        worst = case["cpu"]["max"]
        add(f"slowest adversarial decision, any seed ({which}, CPU)", f"{worst:.1f} ms",
            "< 50 ms", worst < 50)  # fmt: skip
    return rows


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_tables(results: dict[str, object]) -> None:
    seeds = list(results["by_seed"])  # type: ignore[arg-type]
    print(f"\n== quality over seeds {', '.join(seeds)}: mean over seeds / worst seed")
    header = (
        f"{'scenario':<13}{'policy':<18}{'U avg':>13}{'U/NI mean':>13}{'U/NI min':>9}"
        f"{'U/cap':>7}{'U/ST mean':>13}{'U/ST min':>9}{'inv':>6}{'evict/dec':>10}{'bad':>5}"
    )
    print(header)
    for name, policies in results["across_seeds"].items():  # type: ignore[union-attr]
        for policy, row in policies.items():

            def pair(metric: str, row: dict = row) -> str:
                return f"{_fmt(row[metric]['mean'])}/{_fmt(row[metric]['worst'])}"

            print(
                f"{name:<13}{policy:<18}{pair('utilization_mean'):>13}"
                f"{pair('u_over_opt_ni.mean'):>13}{_fmt(row['u_over_opt_ni.min']['worst']):>9}"
                f"{_fmt(row['u_over_opt_cap.mean']['mean']):>7}"
                f"{pair('u_over_opt_stable.mean'):>13}"
                f"{_fmt(row['u_over_opt_stable.min']['worst']):>9}"
                f"{row['inversions']:>6}{_fmt(row['evictions_per_decision']['mean'], 4):>10}"
                f"{row['same_or_lower_priority_evictions']:>5}"
                + (f"  ERRORS: {len(row['errors'])}" if row["errors"] else "")
            )
    print("\n== Kargo's decisions during the traces, ms of CPU (p50 / p99 / max over seeds)")
    for name, policies in results["across_seeds"].items():  # type: ignore[union-attr]
        cells = "  ".join(
            f"{policy}: {_fmt(row['decision_cpu_ms']['p50'], 2)} / "
            f"{_fmt(row['decision_cpu_ms']['p99'], 2)} / {_fmt(row['decision_cpu_ms']['max'], 2)}"
            for policy, row in policies.items()
            if "decision_cpu_ms" in row
        )
        print(f"{name:<13}{cells}")
    typical = results.get("latency")
    if typical:
        print("\n== Kargo decision latency, ms of CPU (p50 / p99 / max), queue built, per seed")
        for seed, by_size in typical.items():  # type: ignore[union-attr]
            for size, row in by_size.items():
                cells = "  ".join(
                    f"{op}: {_fmt(d['p50'])}/{_fmt(d['p99'])}/{_fmt(d['max'])}"
                    for op, d in row["cpu"].items()
                )
                print(f"seed {seed} n={size:>6} (run {row['running']}, pend {row['pending']}, "
                      f"{row['trials']} trials)  {cells}")  # fmt: skip
    adversarial = results.get("adversarial")
    if adversarial:
        print("\n== adversarial decisions, ms (CPU p50 / p99 / max; wall max), per seed")
        for seed, by_case in adversarial.items():  # type: ignore[union-attr]
            for name, row in by_case.items():
                cpu, wall = row["cpu"], row["wall"]
                print(f"seed {seed} {name:<28}{row['deployments']:>7} jobs {row['kinds']:>3} "
                      f"kinds  {_fmt(cpu['p50'], 2)} / {_fmt(cpu['p99'], 2)} / "
                      f"{_fmt(cpu['max'], 2)}; wall {_fmt(wall['max'], 2)}; "
                      f"not exact {row['inexact']}")  # fmt: skip
    print("\n== targets")
    for row in results["targets"]:  # type: ignore[union-attr]
        mark = "PASS" if row["pass"] else "FAIL"
        print(f"{mark}  {row['target']}: {row['value']} (goal {row['goal']})")


def plot(results: dict[str, object], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    first = next(iter(results["by_seed"].values()))  # type: ignore[union-attr]
    scen = first["scenarios"]
    name = PLOT_TRACE if PLOT_TRACE in scen else next(iter(scen))
    sc = scen[name]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for policy, line in sc["timelines"].items():
        if line:
            times, values = zip(*line, strict=True)
            ax.step(times, values, where="post", label=policy, linewidth=1.0)
    points = [r for r in sc["reference_points"]["ni"] if not math.isnan(r["value"])]
    if points:
        kinds = len(sc["capacity"])
        times = [sc["event_times"][r["event"]] for r in points]
        ax.scatter(times, [r["value"] / kinds for r in points], s=12, c="black",
                   label="OPT_NI (sampled)", zorder=5)  # fmt: skip
    ax.set_xlabel("time")
    ax.set_ylabel("utilization (mean over kinds)")
    ax.set_title(f"Utilization over time, trace {name}, seed {next(iter(results['by_seed']))}")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, sc["window_end"])
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = out / "scheduler_utilization.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    labels, data = [], []
    policies = list(sc["policies"])
    for policy in policies:
        pooled = [
            r
            for seed in results["by_seed"].values()  # type: ignore[union-attr]
            for s in seed["scenarios"].values()
            for r in s["policies"][policy]["ratios_ni"]
        ]
        if pooled:
            labels.append(f"{policy}\n/ OPT_NI")
            data.append(pooled)
    pooled = [
        r
        for seed in results["by_seed"].values()  # type: ignore[union-attr]
        for s in seed["scenarios"].values()
        for r in s["policies"][KARGO]["ratios_stable"]
    ]
    if pooled:
        labels.insert(1, "kargo\n/ OPT_stable")
        data.insert(1, pooled)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.boxplot(data, whis=(5, 95), showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylabel("U / OPT per sampled decision")
    ax.set_title("U / OPT, all scenarios and seeds pooled (whiskers 5-95%, triangle = mean)")
    fig.tight_layout()
    path = out / "scheduler_u_over_opt.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def _strict_json(value: object) -> object:
    """NaN (no sample, no solution) becomes null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    return value


def machine() -> dict[str, object]:
    """The machine, from /proc/cpuinfo where there is one, and the moment of the run."""
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import ortools

    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "ortools": ortools.__version__,
        "load_average_at_start": [round(x, 2) for x in load],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, not minutes")
    parser.add_argument("--seeds", type=int, nargs="+", help="trace seeds (default 1 2 3 4 5)")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, help="a subset to run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--export-traces", action="store_true", help="write OUT/traces.jsonl")
    parser.add_argument("--replay", type=Path, help="replay traces from a JSON-lines file")
    parser.add_argument("--arrivals", type=int, help="submissions per scenario")
    parser.add_argument(
        "--ref-every", type=int, help="solve references every N decisions (0: never)"
    )
    parser.add_argument("--ref-time", type=float, default=1.0, help="CP-SAT limit per solve (s)")
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT workers")
    parser.add_argument("--latency-trials", type=int, help="decisions timed per size and kind")
    parser.add_argument("--latency-sizes", type=int, nargs="*")
    parser.add_argument("--adversarial-sizes", type=int, nargs="*")
    parser.add_argument("--no-docs-img", action="store_true", help="do not copy plots to docs/")
    args = parser.parse_args(argv)
    quick = args.quick
    seeds = args.seeds or ([1, 2] if quick else [1, 2, 3, 4, 5])
    names = args.scenarios or (QUICK_SCENARIOS if quick else None)
    arrivals = args.arrivals or (40 if quick else 160)
    ref_every = args.ref_every if args.ref_every is not None else (5 if quick else 8)
    sizes = args.latency_sizes if args.latency_sizes is not None else (
        [10, 100] if quick else list(LATENCY_SIZES)
    )  # fmt: skip
    adversarial_sizes = args.adversarial_sizes if args.adversarial_sizes is not None else (
        [200] if quick else list(ADVERSARIAL_SIZES)
    )  # fmt: skip

    def trials(n: int) -> int:
        if args.latency_trials:
            return args.latency_trials
        if quick:
            return 5
        return 200 if n <= 100 else 100 if n <= 1_000 else 15

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, object] = {
        "machine": machine(),
        "settings": {
            "seeds": seeds,
            "quick": quick,
            "replay": str(args.replay) if args.replay else None,
            "arrivals": arrivals,
            "ref_every": ref_every,
            "ref_time_limit_s": args.ref_time,
            "cpsat_workers": args.workers,
            "repack": dict(
                zip(("threshold_bp", "max_per_hour", "cooldown"), BENCH_REPACK, strict=True)
            ),
            "repack_default": dict(
                zip(("threshold_bp", "max_per_hour", "cooldown"), DEFAULT_REPACK, strict=True)
            ),
        },
        "by_seed": {},
    }
    all_traces: list[Trace] = []
    for seed in seeds:
        traces = read_traces(args.replay) if args.replay else scenarios(arrivals, seed, names)
        all_traces += traces
        seed_results: dict[str, object] = {"scenarios": {}}
        for trace in traces:
            begin = time.perf_counter()
            sc = replay(trace, ref_every, args.ref_time, args.workers)
            sc["event_times"] = [e.time for e in trace.events]
            sc["seconds"] = round(time.perf_counter() - begin, 2)
            seed_results["scenarios"][trace.name] = sc  # type: ignore[index]
            print(f"seed {seed}: replayed {trace.name} in {sc['seconds']} s", file=sys.stderr)
        results["by_seed"][str(seed)] = seed_results  # type: ignore[index]
        if args.replay:
            break
    if args.export_traces:
        write_traces(all_traces, args.out / "traces.jsonl")
        print(f"traces written to {args.out / 'traces.jsonl'}")
    results["across_seeds"] = across_seeds(results["by_seed"])  # type: ignore[arg-type]
    begin = time.perf_counter()
    # Every seed draws its own states (and knapsack cases): targets are judged on the worst.
    results["latency"] = {str(s): latency.typical(sizes, trials, s) for s in seeds} if sizes else {}
    results["adversarial"] = (
        {str(s): latency.adversarial(adversarial_sizes, 1 if quick else 2, s) for s in seeds}
        if adversarial_sizes
        else {}
    )
    print(f"latency measured in {time.perf_counter() - begin:.1f} s", file=sys.stderr)
    results["targets"] = evaluate_targets(results)
    results["seconds"] = round(time.perf_counter() - started, 1)

    print_tables(results)
    paths = plot(results, args.out)
    if not args.no_docs_img and not args.replay and not quick:
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy(path, img / path.name)
    for seed_key, seed_results in results["by_seed"].items():  # type: ignore[union-attr]
        for name, sc in seed_results["scenarios"].items():
            sc.pop("event_times")
            if name != PLOT_TRACE or seed_key != str(seeds[0]):
                sc["timelines"] = {}  # keep the JSON small: one plotted timeline
    (args.out / "scheduler.json").write_text(
        json.dumps(_strict_json(results), indent=1) + "\n", encoding="utf-8"
    )
    failed = sum(1 for row in results["targets"] if not row["pass"])  # type: ignore[union-attr]
    print(
        f"\n{len(results['targets']) - failed} targets passed, {failed} failed; "  # type: ignore[arg-type]
        f"{results['seconds']} s; results in {args.out}/scheduler.json and PNGs"
    )
    return results


if __name__ == "__main__":
    main()

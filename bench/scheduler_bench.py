"""Scheduler benchmark: Kargo's scheduler against its peers and exact CP-SAT references.

    .venv/bin/python bench/scheduler_bench.py                 # default, under a minute on 2 cores
    .venv/bin/python bench/scheduler_bench.py --full          # longer traces, more references
    .venv/bin/python bench/scheduler_bench.py --export-traces # also write the traces (JSON lines)
    .venv/bin/python bench/scheduler_bench.py --replay bench/results/traces.jsonl

Every policy replays the same traces (bench/workloads.py) in the same simulator
(bench/policies.py); after every event the independent checker (bench/metrics.py) counts
inversions, work-conservation misses, capacity violations and evictions; on a sample of
decision points the CP-SAT references (bench/reference.py) give OPT_NI and OPT_stable:

  * OPT_NI(t): max U over every inversion-free state of the deployments present after event t
    (capacity, count limit, no inversion, work conservation), free to evict anything. It depends
    only on the trace, so every policy is divided by the same number.
  * OPT_stable(t): the same, but keeping P(t) = Kargo's running set before event t, minus the
    deployment event t deletes, minus the victims Kargo's decision preempts (each checked by the
    independent checker to be preempted by a strictly higher-priority deployment that starts).
    This is exactly the freedom rule 7 leaves Kargo once rules 4 and 5 are applied, so it is
    reported for Kargo only (a peer's own running set can make it infeasible: FIFO keeps
    inversions that no admission can repair).

Time-averaged utilization is taken over [first event, last submission]: the drain after the
last arrival is the same for every policy and would only dilute the differences. Queue wait is
first start minus submission; a deployment that never started counts with its whole life
(censored) and is also counted as "never started".

Decision latency is measured separately on synthetic single-cluster states of 10 to 10,000
deployments (see `measure_latency`). Writes scheduler.json and PNG plots to --out (default
bench/results/) and copies the two plots to docs/img/.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import platform
import random
import shutil
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.scheduler import ClusterState, Delete, Job, Submit, schedule  # noqa: E402
from bench import reference  # noqa: E402
from bench.metrics import (  # noqa: E402
    TimeAverage,
    check_snapshot,
    check_transition,
    priority_greedy,
    quantile,
    summary,
)
from bench.policies import ClusterSim, all_policies  # noqa: E402
from bench.workloads import (  # noqa: E402
    RESOURCE_CLASSES,
    Trace,
    draw_requests,
    read_traces,
    scenarios,
    tiered_priority,
    write_traces,
)

KARGO = "kargo"
PLOT_TRACE = "load-1.5"
LATENCY_SIZES = (10, 100, 1_000, 10_000)


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
        self.inversions = 0  # summed over decisions: pending jobs inverted after the decision
        self.decisions_with_inversion = 0
        self.first_inversion: dict[str, object] | None = None
        self.work_misses = 0
        self.capacity_violations = 0
        self.evictions = 0
        self.bad_evictions = 0
        self.ratio_ni: list[float] = []
        self.ratio_stable: list[float] = []
        self.greedy_matches = 0
        self.greedy_checked = 0
        self.error: str | None = None


def replay(trace: Trace, ref_every: int, time_limit: float, workers: int) -> dict[str, object]:
    """Run every policy over `trace`; solve the references every `ref_every` decisions."""
    kinds = sorted(trace.capacity)
    policies = all_policies()
    sims = {p.name: ClusterSim(trace.capacity, trace.max_deployments) for p in policies}
    runs = {p.name: PolicyRun(p.name, kinds) for p in policies}
    present: dict[int, Job] = {}
    submitted_at: dict[int, float] = {}
    deleted_at: dict[int, float] = {}
    rejected: set[int] = set()
    submit_times = [e.time for e in trace.events if e.op == "submit"]
    window_end = max(submit_times) if submit_times else 0.0
    distinct = len({e.priority for e in trace.events if e.op == "submit"}) > 10
    refs: dict[str, list[dict[str, object]]] = {"ni": [], "stable": []}
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
            run, sim = runs[policy.name], sims[policy.name]
            if run.error:
                continue
            deleted = sim.remove(event.id) if job is None else None
            before = dict(sim.running)
            try:
                outcome = policy.decide(sim, job, deleted)
                sim.apply(outcome, job)
            except Exception:  # a crash of the policy under test is a result, not an abort
                run.error = f"event {index} ({event.op} #{event.id}): {traceback.format_exc()}"
                continue
            snap = check_snapshot(trace.capacity, sim.running.values(), sim.pending.values())
            run.capacity_violations += snap.capacity_violations
            run.work_misses += snap.work_conservation_misses
            run.inversions += snap.inversions
            if snap.inversions:
                run.decisions_with_inversion += 1
                if run.first_inversion is None:
                    run.first_inversion = {"event": index, "ids": snap.inverted_ids[:10]}
            evictions, bad = check_transition(
                before, sim.running, outcome.preempted, event.id if job is None else None
            )
            run.evictions += evictions
            run.bad_evictions += bad
            for started in outcome.started:
                run.first_start.setdefault(started, event.time)
            used = sim.used()
            if event.time <= window_end:
                run.usage.observe(event.time, [u / c for u, c in zip(used, sim.cap, strict=True)])
            run.timeline.append((event.time, sim.utilization() / len(kinds)))
            if policy.name == KARGO:
                protected = set(before) - set(outcome.preempted)
            if distinct:
                run.greedy_checked += 1
                greedy = priority_greedy(trace.capacity, present.values())
                run.greedy_matches += set(sim.running) == greedy

        if ref_every and decisions % ref_every == 0 and present:
            jobs = list(present.values())
            ni = reference.solve(
                trace.capacity, jobs, (), trace.max_deployments, time_limit, workers
            )
            refs["ni"].append(_ref_row(index, ni))
            if ni.value > 0:
                for run in runs.values():
                    if not run.error:
                        run.ratio_ni.append(sims[run.name].utilization() / ni.value)
            if protected is not None and not runs[KARGO].error:
                stable = reference.solve(
                    trace.capacity, jobs, protected, trace.max_deployments, time_limit, workers
                )
                row = _ref_row(index, stable)
                row["kargo_u"] = sims[KARGO].utilization()
                refs["stable"].append(row)
                if stable.value > 0:
                    runs[KARGO].ratio_stable.append(sims[KARGO].utilization() / stable.value)

    end = window_end
    results: dict[str, object] = {}
    for run in runs.values():
        results[run.name] = _policy_result(run, trace, submitted_at, deleted_at, distinct, end)
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
        "utilization": {k: a for k, a in zip(run.kinds, averages, strict=True)},
        "utilization_mean": sum(averages) / len(averages),
        "u_over_opt_ni": summary(run.ratio_ni),
        "u_over_opt_stable": summary(run.ratio_stable) if run.name == KARGO else None,
        "inversions": run.inversions,
        "decisions_with_inversion": run.decisions_with_inversion,
        "first_inversion": run.first_inversion,
        "work_conservation_misses": run.work_misses,
        "capacity_violations": run.capacity_violations,
        "evictions": run.evictions,
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
# Decision latency of Kargo's scheduler on one big cluster.


def synthetic_state(n: int, rng: random.Random) -> ClusterState:
    """n deployments, ~70% running: a valid state (rules 1-3) built by a priority greedy.

    Capacity is the sum of the first 70% of the requests, and at least the largest size any
    resource class can ask for (so new submissions are never rejected as infeasible).
    """
    jobs = [Job(i, tiered_priority(rng), draw_requests(rng), i) for i in range(1, n + 1)]
    share = jobs[: max(1, int(n * 0.7))]
    largest: dict[str, int] = defaultdict(int)
    for _, _, menus in RESOURCE_CLASSES:
        for kind, menu in menus.items():
            largest[kind] = max(largest[kind], max(menu))
    capacity = {
        k: max(largest[k], sum(j.requests.get(k, 0) for j in share)) for k in ("cpu", "gpu", "ram")
    }
    chosen = priority_greedy(capacity, jobs)
    running = [
        Job(j.id, j.priority, j.requests, j.submitted, order)
        for order, j in enumerate((j for j in jobs if j.id in chosen), 1)
    ]
    pending = [j for j in jobs if j.id not in chosen]
    snap = check_snapshot(capacity, running, pending)
    assert not (snap.inversions or snap.capacity_violations or snap.work_conservation_misses)
    return ClusterState(capacity, running, pending)


def default_trials(n: int, full: bool) -> int:
    """Decisions timed per size: many where they are cheap, fewer where one can take 100 ms."""
    trials = 200 if n <= 100 else 60 if n <= 1_000 else 15
    return trials * 4 if full else trials


def measure_latency(
    sizes: Sequence[int], trials: int | None, seed: int, full: bool = False
) -> dict[str, object]:
    """p50/p99 of schedule() for a submit, a delete of a running and of a pending deployment.

    Only the schedule() call is timed (perf_counter_ns), on a state built beforehand. The lazy
    queue (ordering the pending list and writing every reason) is not built inside schedule();
    it is timed separately ("... +queue": schedule() plus materializing decision.queue).
    During timing the garbage collector is frozen and disabled (gc.freeze(), gc.disable()), as a
    long-lived service holding its state would mostly see; it is re-enabled between sizes.
    """
    rng = random.Random(f"latency-{seed}")
    out: dict[str, object] = {}
    for n in sizes:
        state = synthetic_state(n, rng)
        count = trials or default_trials(n, full)
        samples: dict[str, list[float]] = defaultdict(list)
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            for t in range(count):
                new = Job(n + 1 + t, tiered_priority(rng), draw_requests(rng), n + 1 + t)
                events = {
                    "submit": Submit(new),
                    "delete running": Delete(frozenset({rng.choice(state.running).id})),
                }
                if state.pending:
                    events["delete pending"] = Delete(frozenset({rng.choice(state.pending).id}))
                for name, event in events.items():
                    begin = time.perf_counter_ns()
                    schedule(state, event)
                    samples[name].append((time.perf_counter_ns() - begin) / 1e6)
                for name in ("submit", "delete running"):
                    begin = time.perf_counter_ns()
                    decision = schedule(state, events[name])
                    len(decision.queue)  # materializes the lazy queue with every reason
                    samples[f"{name} +queue"].append((time.perf_counter_ns() - begin) / 1e6)
        finally:
            gc.enable()
            gc.unfreeze()
        out[str(n)] = {
            "running": len(state.running),
            "pending": len(state.pending),
            "trials": count,
            **{
                name: {"p50": quantile(s, 0.5), "p99": quantile(s, 0.99), "max": max(s)}
                for name, s in samples.items()
            },
        }
    return out


# --------------------------------------------------------------------------------------------
# Targets, output.


def evaluate_targets(results: dict[str, object]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def add(name: str, value: object, target: str, ok: bool) -> None:
        rows.append({"target": name, "value": value, "goal": target, "pass": bool(ok)})

    scen = results["scenarios"]
    for name, sc in scen.items():  # type: ignore[union-attr]
        kargo = sc["policies"][KARGO]
        if kargo["error"]:
            add(f"{name}: kargo runs without error", "crashed", "no crash", False)
        add(f"{name}: kargo inversions", kargo["inversions"], "0", kargo["inversions"] == 0)
        st, ni = kargo["u_over_opt_stable"], kargo["u_over_opt_ni"]
        if st["n"]:
            add(
                f"{name}: kargo mean U/OPT_stable",
                round(st["mean"], 4),
                ">= 0.99",
                st["mean"] >= 0.99,
            )
            add(
                f"{name}: kargo min U/OPT_stable", round(st["min"], 4), ">= 0.97", st["min"] >= 0.97
            )
        if ni["n"]:
            add(f"{name}: kargo mean U/OPT_NI", round(ni["mean"], 4), ">= 0.93", ni["mean"] >= 0.93)
        bad = kargo["same_or_lower_priority_evictions"]
        add(f"{name}: kargo same-or-lower-priority evictions", bad, "0", bad == 0)
        kube = sc["policies"]["kube"]
        versus = f"{kargo['utilization_mean']:.4f} vs {kube['utilization_mean']:.4f}"
        if "greedy_match" in kargo:
            # All priorities distinct: both correct policies must reach the same greedy state,
            # so "above" is impossible by construction; equality is what correctness means.
            same = math.isclose(kargo["utilization_mean"], kube["utilization_mean"])
            add(f"{name}: kargo time-avg U = kube's (forced)", versus, "=", same)
        else:
            add(
                f"{name}: kargo time-avg U > kube's",
                versus,
                ">",
                kargo["utilization_mean"] > kube["utilization_mean"],
            )
        if "greedy_match" in kargo:
            for policy, pr in sc["policies"].items():
                gm = pr["greedy_match"]
                if policy in (KARGO, "kube"):
                    add(
                        f"{name}: {policy} == priority greedy",
                        f"{gm['matches']}/{gm['checked']}",
                        "all",
                        gm["matches"] == gm["checked"],
                    )
    latency = results.get("latency") or {}
    for size, limit in (("1000", 1.0), ("10000", 10.0)):
        if size in latency:
            for op in ("submit", "delete running"):
                p99 = latency[size][op]["p99"]
                add(f"latency p99 {op} at {size}", f"{p99:.3f} ms", f"< {limit} ms", p99 < limit)
    return rows


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def print_tables(results: dict[str, object]) -> None:
    for name, sc in results["scenarios"].items():  # type: ignore[union-attr]
        refs = sc["references"]
        print(
            f"\n== {name}: {sc['description']} ({sc['submissions']} submissions, "
            f"{sc['rejected']} rejected, {sc['decisions']} decisions; references: "
            f"OPT_NI {refs['ni']['optimal']}/{refs['ni']['solved']} optimal, "
            f"OPT_stable {refs['stable']['optimal']}/{refs['stable']['solved']} optimal)"
        )
        print(
            f"{'policy':<13}{'U avg':>7}{'cpu':>7}{'ram':>7}{'gpu':>7}"
            f"{'U/NI mean':>10}{'p10':>7}{'min':>7}{'U/ST mean':>10}{'min':>7}"
            f"{'inv':>6}{'wc':>6}{'evict':>7}{'bad':>5}"
        )
        for policy, pr in sc["policies"].items():
            ni, st = pr["u_over_opt_ni"], pr["u_over_opt_stable"] or {}
            util = pr["utilization"]
            print(
                f"{policy:<13}{_fmt(pr['utilization_mean']):>7}{_fmt(util.get('cpu')):>7}"
                f"{_fmt(util.get('ram')):>7}{_fmt(util.get('gpu')):>7}"
                f"{_fmt(ni['mean']):>10}{_fmt(ni['p10']):>7}{_fmt(ni['min']):>7}"
                f"{_fmt(st.get('mean', math.nan)):>10}{_fmt(st.get('min', math.nan)):>7}"
                f"{pr['inversions']:>6}{pr['work_conservation_misses']:>6}"
                f"{pr['evictions']:>7}{pr['same_or_lower_priority_evictions']:>5}"
                + (f"  ERROR: {pr['error'].splitlines()[0]}" if pr["error"] else "")
            )
            if "greedy_match" in pr:
                gm = pr["greedy_match"]
                print(
                    f"{'':<13}state == priority greedy after {gm['matches']}/{gm['checked']}"
                    " decisions"
                )
    print("\n== queue wait by priority tier (time units; p50 / p99 / max; never started)")
    for name, sc in results["scenarios"].items():  # type: ignore[union-attr]
        print(f"-- {name}")
        for policy, pr in sc["policies"].items():
            cells = "  ".join(
                f"{tier}: {_fmt(w['p50'], 1)}/{_fmt(w['p99'], 1)}/{_fmt(w['max'], 1)}"
                f" ({w['never_started']})"
                for tier, w in pr["queue_wait"].items()
            )
            print(f"   {policy:<13}{cells}")
    latency = results.get("latency")
    if latency:
        print("\n== Kargo decision latency, ms (p50 / p99), schedule() only; +queue builds it")
        for size, row in latency.items():
            cells = "  ".join(
                f"{op}: {_fmt(v['p50'])}/{_fmt(v['p99'])}"
                for op, v in row.items()
                if isinstance(v, dict)
            )
            print(
                f"n={size:>6} (run {row['running']}, pend {row['pending']}, "
                f"{row['trials']} trials)  {cells}"
            )
    print("\n== targets")
    for row in results["targets"]:  # type: ignore[union-attr]
        mark = "PASS" if row["pass"] else "FAIL"
        print(f"{mark}  {row['target']}: {row['value']} (goal {row['goal']})")


def plot(results: dict[str, object], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    scen = results["scenarios"]
    name = PLOT_TRACE if PLOT_TRACE in scen else next(iter(scen))  # type: ignore[arg-type]
    sc = scen[name]  # type: ignore[index]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for policy, line in sc["timelines"].items():
        if line:
            times, values = zip(*line, strict=True)
            ax.step(times, values, where="post", label=policy, linewidth=1.1)
    points = [r for r in sc["reference_points"]["ni"] if not math.isnan(r["value"])]
    if points:
        kinds = len(sc["capacity"])
        times = [_event_time(sc, r["event"]) for r in points]
        ax.scatter(
            times,
            [r["value"] / kinds for r in points],
            s=12,
            c="black",
            label="OPT_NI (sampled)",
            zorder=5,
        )
    ax.set_xlabel("time")
    ax.set_ylabel("utilization (mean over cpu, ram, gpu)")
    ax.set_title(f"Utilization over time, trace {name}")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, sc["window_end"])  # the drain after the last arrival says nothing
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = out / "scheduler_utilization.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    labels, data = [], []
    policies = list(next(iter(scen.values()))["policies"])  # type: ignore[union-attr]
    for policy in policies:
        pooled = [r for s in scen.values() for r in s["policies"][policy]["ratios_ni"]]  # type: ignore[union-attr]
        if pooled:
            labels.append(f"{policy}\n/ OPT_NI")
            data.append(pooled)
    pooled = [r for s in scen.values() for r in s["policies"][KARGO]["ratios_stable"]]  # type: ignore[union-attr]
    if pooled:
        labels.insert(1, "kargo\n/ OPT_stable")
        data.insert(1, pooled)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.boxplot(data, whis=(5, 95), showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylabel("U / OPT per sampled decision")
    ax.set_title("U / OPT, all scenarios pooled (whiskers 5-95%, triangle = mean)")
    fig.tight_layout()
    path = out / "scheduler_u_over_opt.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def _event_time(sc: dict[str, object], event_index: int) -> float:
    return sc["event_times"][event_index]  # type: ignore[index]


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
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    model = next(
        (ln.split(":", 1)[1].strip() for ln in run("lscpu").splitlines() if "Model name" in ln),
        platform.processor(),
    )
    import ortools

    return {
        "nproc": run("nproc").strip(),
        "cpu": model,
        "python": platform.python_version(),
        "ortools": ortools.__version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer traces, every 2nd reference")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--export-traces", action="store_true", help="write OUT/traces.jsonl")
    parser.add_argument("--replay", type=Path, help="replay traces from a JSON-lines file")
    parser.add_argument("--arrivals", type=int, help="submissions per scenario")
    parser.add_argument(
        "--ref-every", type=int, help="solve references every N decisions (0: never)"
    )
    parser.add_argument("--ref-time", type=float, default=1.0, help="CP-SAT limit per solve (s)")
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT workers")
    parser.add_argument("--latency-trials", type=int)
    parser.add_argument("--latency-sizes", type=int, nargs="*", default=list(LATENCY_SIZES))
    parser.add_argument("--no-docs-img", action="store_true", help="do not copy plots to docs/")
    args = parser.parse_args(argv)
    arrivals = args.arrivals or (1200 if args.full else 240)
    ref_every = args.ref_every if args.ref_every is not None else (2 if args.full else 8)
    trials = args.latency_trials  # None: per-size defaults (see default_trials)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    traces = read_traces(args.replay) if args.replay else scenarios(arrivals, args.seed)
    if args.export_traces:
        write_traces(traces, args.out / "traces.jsonl")
        print(f"traces written to {args.out / 'traces.jsonl'}")

    results: dict[str, object] = {
        "machine": machine(),
        "settings": {
            "seed": args.seed,
            "full": args.full,
            "replay": str(args.replay) if args.replay else None,
            "arrivals": arrivals,
            "ref_every": ref_every,
            "ref_time_limit_s": args.ref_time,
            "cpsat_workers": args.workers,
            "latency_trials": trials,
        },
        "scenarios": {},
    }
    for trace in traces:
        begin = time.perf_counter()
        sc = replay(trace, ref_every, args.ref_time, args.workers)
        sc["event_times"] = [e.time for e in trace.events]
        sc["seconds"] = round(time.perf_counter() - begin, 2)
        results["scenarios"][trace.name] = sc  # type: ignore[index]
        print(f"replayed {trace.name} in {sc['seconds']} s", file=sys.stderr)
    begin = time.perf_counter()
    results["latency"] = (
        measure_latency(args.latency_sizes, trials, args.seed, args.full)
        if args.latency_sizes
        else {}
    )
    print(f"latency measured in {time.perf_counter() - begin:.1f} s", file=sys.stderr)
    results["targets"] = evaluate_targets(results)
    results["seconds"] = round(time.perf_counter() - started, 1)

    print_tables(results)
    paths = plot(results, args.out)
    if not args.no_docs_img and not args.replay:
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy(path, img / path.name)
    for name, sc in results["scenarios"].items():  # type: ignore[union-attr]
        sc.pop("event_times")
        if name != PLOT_TRACE:
            sc["timelines"] = {}  # keep the JSON small: the plotted trace's timeline only
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

"""Why a deployment waits, in words for people: what is short and by how much, which
deployments hold it (by name, a few of them, "and N more") and what would let it start.

Built from the structured `Wait` the scheduler stores with every pending deployment
(`deployments.wait`, see `app.scheduler.Wait`), not from its terse reason text (which the API
and the command line keep). Amounts are worded in one unit per kind (`quantities.
format_display`), like every page. Only reads: the names of the deployments a batch of waits
mentions in one query, and the capacities of their clusters in one more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.quantities import format_display, format_number
from app.services import clusters, deployments
from app.services.deployments import DeploymentView, priority_label

# How many holders a reason names before "and N more".
HOLDERS_NAMED = 3


@dataclass(frozen=True, slots=True)
class Named:
    """A deployment a reason links to."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class WaitWords:
    """A wait reason for people. Pages render: `summary`, then `holders_intro` followed by the
    linked `holders` and "and `holders_more` more", then `next_step`. `sent_back_by` is the
    deployment that preempted (or repacked) this one, linked in `summary`'s place."""

    summary: str
    next_step: str
    holders_intro: str = ""
    holders: tuple[Named, ...] = ()
    holders_more: int = 0
    sent_back_by: Named | None = None
    sent_back_prefix: str = ""
    sent_back_suffix: str = ""

    @property
    def text(self) -> str:
        """The same in plain text (for a title or a test)."""
        parts = []
        if self.sent_back_by is not None:
            parts.append(f"{self.sent_back_prefix}{self.sent_back_by.name}{self.sent_back_suffix}")
        parts.append(self.summary)
        if self.holders_intro:
            names = [h.name for h in self.holders]
            listed = _series(names + ([f"{self.holders_more} more"] if self.holders_more else []))
            parts.append(f"{self.holders_intro} {listed}.")
        parts.append(self.next_step)
        return " ".join(p for p in parts if p)


def explain(organization_id: int, views: Iterable[DeploymentView]) -> dict[int, WaitWords]:
    """Words for every pending deployment among `views` (id -> words), all of the
    organization's: two queries in all, none when nothing waits."""
    pending = [v for v in views if v.status == "pending" and v.wait]
    if not pending:
        return {}
    mentioned: set[int] = set()
    for view in pending:
        mentioned.update(view.wait.get("blocking_ids") or ())
        if view.wait.get("preempted_by"):
            mentioned.add(view.wait["preempted_by"])
    names = deployments.names_of(organization_id, mentioned)
    capacities = clusters.capacities(organization_id, {v.cluster_id for v in pending})
    return {
        v.id: words(v.wait, names, capacities.get(v.cluster_id, {}), v.priority) for v in pending
    }


def words(
    wait: Mapping[str, Any],
    names: Mapping[int, str],
    capacity: Mapping[str, int],
    priority: int | None = None,
) -> WaitWords:
    """One `Wait` (as stored: base units) in words. `names` maps the deployments it mentions
    to their names (a deployment gone since is left out); `capacity` is its cluster's."""
    cause = wait.get("cause")
    kind = wait.get("kind")
    if cause == "infeasible":
        message = (wait.get("message") or "it asks for more than the cluster has").rstrip(".")
        return WaitWords(
            summary=f"It can never run on this cluster: {message}.",
            next_step="Delete it, or clone it onto a bigger cluster or with smaller requests.",
        )
    if cause in ("quota", "no_preempt", "reserved"):
        return _fair_use_words(wait, names)
    if kind is None:
        return WaitWords(
            summary="It is waiting for the scheduler's next decision.",
            next_step="It starts by itself when room appears.",
        )
    needed, free, held = wait.get("needed", 0), wait.get("free", 0), wait.get("held", 0)
    own = wait.get("priority", priority)
    total = capacity.get(kind)
    # What lower priorities hold could be taken by preemption; the rest is truly missing.
    lower = max(0, total - free - held) if total is not None else 0
    missing = max(0, needed - free - lower) or max(0, needed - free)

    def amount(base: int) -> str:
        return format_display(kind, base)

    def verb(base: int) -> str:
        return "is" if format_number(kind, base) == "1" else "are"

    summary = f"Short of {amount(missing)}: it needs {amount(needed)} and {amount(free)} "
    summary += f"{verb(free)} free"
    if lower:
        summary += f", {amount(lower)} more held by lower priorities"
    summary += "."
    known = [i for i in (wait.get("blocking_ids") or ()) if i in names]
    holders = tuple(Named(i, names[i]) for i in known[:HOLDERS_NAMED])
    more = len(known) - len(holders) + (wait.get("blocking_more") or 0)
    intro = ""
    if held:
        intro = (
            f"{amount(held)} {verb(held)} held by deployments of priority "
            f"{priority_label(own)} or higher, which it cannot preempt"
        )
        intro += ":" if holders or more else "."
    next_step = (
        f"It starts by itself once {amount(missing)} more {verb(missing)} free (when one of "
        "those ends or is deleted), or sooner if its priority is raised above theirs."
    )
    by = wait.get("preempted_by")
    sent_back = Named(by, names.get(by, f"deployment #{by}")) if by else None
    prefix = suffix = ""
    if sent_back is not None:
        by_priority = wait.get("preemptor_priority")
        if cause == "repacked":
            prefix = "The cluster's repack moved it back to the queue to fit "
            suffix = ", of the same priority."
        else:
            prefix = "Preempted by "
            suffix = f", of priority {priority_label(by_priority)}." if by_priority else "."
    return WaitWords(
        summary=summary,
        next_step=next_step,
        holders_intro=intro,
        holders=holders if intro else (),
        holders_more=more if intro else 0,
        sent_back_by=sent_back,
        sent_back_prefix=prefix,
        sent_back_suffix=suffix,
    )


def _fair_use_words(wait: Mapping[str, Any], names: Mapping[int, str]) -> WaitWords:
    """The fair-use causes (docs/scheduling.md, "Fair use"): a quota, a deployment that never
    preempts, a starving deployment's reservation."""
    cause, kind = wait.get("cause"), wait.get("kind")
    needed, free = wait.get("needed", 0), wait.get("free", 0)
    missing = max(0, needed - free)
    if cause == "quota":
        message = (wait.get("message") or "a resource quota is full").rstrip(".")
        return WaitWords(
            summary=f"Starting it would take a quota over its limit: {message}.",
            next_step=(
                "It starts by itself once enough of that quota is free again (when work counted "
                "in it ends or is deleted); a quota never preempts."
            ),
        )
    if cause == "no_preempt":
        short = (
            f" It needs {format_display(kind, needed)} and {format_display(kind, free)} "
            f"{'is' if format_number(kind, free) == '1' else 'are'} free."
            if kind
            else ""
        )
        more = f"once {format_display(kind, missing)} more is free" if kind else "when room is free"
        return WaitWords(
            summary=f"It never preempts, so it waits for free room.{short}",
            next_step=f"It starts by itself {more}.",
        )
    held_by = [i for i in (wait.get("blocking_ids") or ()) if i in names]
    reserved = Named(held_by[0], names[held_by[0]]) if held_by else None
    return WaitWords(
        summary=(
            "That deployment has waited longer than the cluster's starvation threshold and "
            "holds a reservation; later work starts only where it does not delay it."
            if reserved
            else "A deployment that has waited too long holds the cluster's reservation."
        ),
        next_step="It starts by itself once the reservation's deployment has started.",
        sent_back_by=reserved,
        sent_back_prefix="It waits behind ",
        sent_back_suffix=".",
    )


def _series(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]

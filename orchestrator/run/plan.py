"""The planner's second half: one work order per category, and lanes that keep overlapping work apart."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from orchestrator.categories import MODEL_AGENT, specialist_for
from orchestrator.models import PRIORITIES, Environment, TriageReport, WorkOrder

_SITE = re.compile(r"(?:site|dist)-packages/([A-Za-z_]\w*)")


class Plan(BaseModel):
    orders: list[WorkOrder]
    left: dict[str, str] = Field(default_factory=dict)  # category -> why no agent takes it


def plan(
    report: TriageReport,
    *,
    agents: set[str] | None = None,
    model_available: bool = False,
    first: list[str] | None = None,
    notes: dict[str, str] | None = None,
) -> Plan:
    """Work orders in the order they should run: categories a handoff listed first, then priority."""
    result = Plan(orders=[])
    for category in report.categories:
        agent = category.agent or specialist_for(category.id)
        if agents is not None and agent not in agents and category.id not in agents:
            result.left[category.key] = f"not among --agents ({', '.join(sorted(agents))})"
            continue
        if agent == MODEL_AGENT and not model_available:
            result.left[category.key] = (
                "no offline specialist; needs a model (set ANTHROPIC_API_KEY)"
            )
            continue
        tests = set(category.tests)
        result.orders.append(
            WorkOrder(
                category=category.id,
                item=category.item,
                cause=category.cause,
                title=category.title,
                tests=category.tests,
                affected_files=category.affected_files,
                root_cause=category.root_cause,
                fix_strategy=category.fix_strategy,
                priority=category.priority,
                agent=agent,
                target=category.count,
                failures=[f for f in report.failures if f.nodeid in tests],
                findings=[f for f in report.isolation if f.victim in tests],
                notes=(notes or {}).get(category.id, ""),
                environment=_involved(report, tests),
            )
        )
    listed: dict[str, int] = {}
    for cat in first or []:  # a category can be listed once per plan item
        listed.setdefault(cat, len(listed))
    result.orders.sort(
        key=lambda o: (listed.get(o.category, len(listed)), PRIORITIES.index(o.priority), -o.target)
    )
    return result


def _involved(report: TriageReport, tests: set[str]) -> Environment | None:
    """The environment facts a specialist needs: what changed, and the packages its failures'
    tracebacks pass through (not the whole environment: it can hold hundreds)."""
    env = report.environment
    if env is None:
        return None
    changed = {c.name.lower() for c in env.changes}
    tracebacks = [f.longrepr or "" for f in report.failures if f.nodeid in tests]
    seen = {m.group(1).lower() for text in tracebacks for m in _SITE.finditer(text)}
    keep = changed | {env.distribution(m).lower() for m in seen} | {"pytest"}
    packages = {n: v for n, v in env.packages.items() if n.lower() in keep}
    return env.model_copy(update={"packages": packages, "modules": {}})


def lanes(orders: list[WorkOrder]) -> list[list[WorkOrder]]:
    """Group orders that would touch the same files; each lane runs its orders one after another.

    The files an order will touch are predicted from its affected files (the failing tests' files
    and the repo files in their tracebacks). Orders sharing any file join one lane.
    """
    lane_of: list[int] = list(range(len(orders)))

    def find(i: int) -> int:
        while lane_of[i] != i:
            lane_of[i] = lane_of[lane_of[i]]
            i = lane_of[i]
        return i

    owner: dict[str, int] = {}
    for i, order in enumerate(orders):
        for path in order.affected_files:
            if path in owner:
                lane_of[find(i)] = find(owner[path])
            else:
                owner[path] = i
    grouped: dict[int, list[WorkOrder]] = {}
    for i, order in enumerate(orders):
        grouped.setdefault(find(i), []).append(order)
    return list(grouped.values())

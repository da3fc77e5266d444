"""LangGraph wiring for `orchestrate run`: nodes are thin adapters over the pipeline's stages.

State is plain JSON (model dumps) so the SQLite checkpointer stores it as is; the emitter, the
controls and the open repository travel in the runtime context, which is never checkpointed.
Agent lanes fan out with `Send` and fan back in through the additive `results` field; a lane that
finished before an interruption is not run again on `--resume` (its writes are checkpointed).
"""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Literal, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from orchestrator import pipeline
from orchestrator.dispatch import LaneContext, run_lane
from orchestrator.errors import Cancelled
from orchestrator.integrate import integrate
from orchestrator.models import AgentResult, SuiteRun, TriageReport, WorkOrder
from orchestrator.pipeline import RunContext
from orchestrator.plan import Plan, lanes, plan


class RunState(TypedDict, total=False):
    options: dict
    base: str
    previous: dict | None  # the handoff this run resumed from (HandoffView dump)
    baseline: dict
    report: dict
    plan: dict
    results: Annotated[list[dict], operator.add]
    integrated: list[dict]
    integration_branch: str | None
    after: dict
    handoff: str
    remaining: list[dict]  # categories still failing after the run


class LaneInput(TypedDict):
    lane: list[dict]
    base: str
    baseline: dict


def _preflight(state: RunState, runtime: Runtime[RunContext]) -> dict:
    return {"base": pipeline.preflight(runtime.context)}


def _baseline(state: RunState, runtime: Runtime[RunContext]) -> dict:
    return {"baseline": pipeline.baseline(runtime.context, state["base"]).model_dump(mode="json")}


def _triage(state: RunState, runtime: Runtime[RunContext]) -> dict:
    run = SuiteRun.model_validate(state["baseline"])
    report = pipeline.diagnose(runtime.context, state["base"], run)
    if state.get("previous"):
        pipeline.report_staleness(runtime.context, state["previous"], report)
    return {"report": report.model_dump(mode="json")}


def _plan(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    previous = state.get("previous") or {}
    first = [c["category"] for c in previous.get("categories", []) if c.get("category")]
    report = TriageReport.model_validate(state["report"])
    result = plan(
        report,
        agents=set(ctx.options.agents) if ctx.options.agents else None,
        model_available=ctx.model is not None,
        first=first,
    )
    pipeline.announce_plan(ctx, report, result)
    return {"plan": result.model_dump(mode="json")}


def _fan_out(state: RunState) -> list[Send] | Literal["integrate"]:
    orders = Plan.model_validate(state["plan"]).orders
    if not orders:
        return "integrate"
    return [
        Send(
            "agents",
            {
                "lane": [o.model_dump(mode="json") for o in lane],
                "base": state["base"],
                "baseline": state["baseline"],
            },
        )
        for lane in lanes(orders)
    ]


def _agents(lane: LaneInput, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    lane_ctx = LaneContext(
        repo=ctx.repo,
        session=ctx.options.session,
        base=lane["base"],
        spec=ctx.spec,
        baseline=SuiteRun.model_validate(lane["baseline"]),
        emit=ctx.emit,
        controls=ctx.controls,
        max_attempts=ctx.options.max_attempts,
        verify_mode=ctx.options.verify,
        model=ctx.model,
        budget_usd=ctx.options.budget_usd,
    )
    results = run_lane([WorkOrder.model_validate(o) for o in lane["lane"]], lane_ctx)
    return {"results": [r.model_dump(mode="json") for r in results]}


def _integrate(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    if ctx.controls.stop_requested:  # the run ends as interrupted: run() writes that handoff
        raise Cancelled("the run was stopped")
    results = [AgentResult.model_validate(r) for r in state.get("results", [])]
    if not ctx.options.integrate:
        return {
            "integrated": [r.model_dump(mode="json") for r in results],
            "integration_branch": None,
        }
    branch = integrate(
        ctx.repo,
        session=ctx.options.session,
        base=state["base"],
        results=results,
        spec=ctx.spec,
        baseline=SuiteRun.model_validate(state["baseline"]),
        emit=ctx.emit,
        full=ctx.options.verify == "full",
    )
    return {
        "integrated": [r.model_dump(mode="json") for r in results],
        "integration_branch": branch,
    }


def _final(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    if ctx.controls.stop_requested:
        raise Cancelled("the run was stopped")
    rev = state.get("integration_branch")
    if not rev:
        return {"after": SuiteRun.model_validate(state["baseline"]).model_dump(mode="json")}
    return {"after": pipeline.final_run(ctx, rev).model_dump(mode="json")}


def _handoff(state: RunState, runtime: Runtime[RunContext]) -> dict:
    handoff = pipeline.handoff_state(runtime.context, dict(state))
    path = pipeline.write_handoff(runtime.context, handoff)
    return {
        "handoff": str(path),
        "remaining": [c.model_dump(mode="json") for c in handoff.remaining],
    }


def build_graph(checkpointer=None):
    """The run graph, compiled; tests compile a fresh one per run."""
    graph = StateGraph(RunState, context_schema=RunContext)
    graph.add_node("preflight", _preflight)
    graph.add_node("baseline", _baseline)
    graph.add_node("triage", _triage)
    graph.add_node("plan", _plan)
    graph.add_node("agents", _agents)
    graph.add_node("integrate", _integrate)
    graph.add_node("final", _final)
    graph.add_node("handoff", _handoff)
    graph.add_edge(START, "preflight")
    graph.add_edge("preflight", "baseline")
    graph.add_edge("baseline", "triage")
    graph.add_edge("triage", "plan")
    graph.add_conditional_edges("plan", _fan_out, ["agents", "integrate"])
    graph.add_edge("agents", "integrate")
    graph.add_edge("integrate", "final")
    graph.add_edge("final", "handoff")
    graph.add_edge("handoff", END)
    return graph.compile(checkpointer=checkpointer)


def checkpointer_for(state_dir: Path) -> SqliteSaver:
    """Checkpoints live in the repository's git directory, never in the working tree."""
    conn = sqlite3.connect(state_dir / "checkpoints.sqlite", check_same_thread=False)
    return SqliteSaver(conn)

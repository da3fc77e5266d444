"""LangGraph wiring for `orchestrate run`: nodes are thin adapters over the stages.

The state holds what grows with the categories (the lanes, the agents' results, the branch);
what grows with the suite (the baseline, the report, the plan) lives in the session's store.
The emitter, the controls and the open repository travel in the runtime context, which is never
checkpointed. Lanes fan out with `Send` (each carries its categories and the base commit) and fan
back in through the additive `results` field; a lane that finished before an interruption is not
run again on `--resume` (its writes are checkpointed).
"""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Literal, TypedDict

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from orchestrator.errors import Cancelled
from orchestrator.models import AgentResult, Usage
from orchestrator.run import report, stages
from orchestrator.run.context import RunContext, RunOptions
from orchestrator.run.stages import Lane


class RunState(TypedDict, total=False):
    options: RunOptions
    base: str  # the commit every agent starts from
    lanes: list[Lane]
    results: Annotated[list[AgentResult], operator.add]
    integrated: list[AgentResult]  # the results, with what integration did to them
    integration_branch: str | None
    handoff: str  # the handoff's path


# The only classes the checkpoints may hold; anything else would come back as a plain dict.
STATE_TYPES = (RunOptions, Lane, AgentResult, Usage)


def _preflight(state: RunState, runtime: Runtime[RunContext]) -> RunState:
    return {"base": stages.preflight(runtime.context)}


def _baseline(state: RunState, runtime: Runtime[RunContext]) -> RunState:
    stages.baseline(runtime.context, state["base"])
    return {}


def _triage(state: RunState, runtime: Runtime[RunContext]) -> RunState:
    stages.diagnose(runtime.context, state["base"])
    return {}


def _plan(state: RunState, runtime: Runtime[RunContext]) -> RunState:
    return {"lanes": stages.plan_lanes(runtime.context, state["base"])}


def _fan_out(state: RunState) -> list[Send] | Literal["integrate"]:
    return [Send("agents", lane) for lane in state["lanes"]] or "integrate"


def _agents(state: Lane, runtime: Runtime[RunContext]) -> RunState:
    """The state of this node is the lane its `Send` carries (LangGraph names the parameter)."""
    return {"results": stages.agents(runtime.context, state)}


def _integrate(state: RunState, runtime: Runtime[RunContext]) -> RunState:
    ctx = runtime.context
    if ctx.controls.stop_requested:  # the run ends as interrupted: run() writes that handoff
        raise Cancelled("the run was stopped")
    results = [r.model_copy() for r in state.get("results", [])]
    branch = stages.integration(ctx, state["base"], results)
    return {"integrated": results, "integration_branch": branch}


def _handoff(state: RunState, runtime: Runtime[RunContext]) -> RunState:
    ctx = runtime.context
    handoff = report.handoff_state(
        ctx,
        base=state["base"],
        results=state.get("integrated", []),
        integration_branch=state.get("integration_branch"),
    )
    return {"handoff": str(report.write(ctx, handoff))}


def build_graph(checkpointer: SqliteSaver | None = None):  # noqa: ANN201 (LangGraph's own type)
    """The run graph, compiled; tests compile a fresh one per run."""
    graph = StateGraph(RunState, context_schema=RunContext)
    graph.add_node("preflight", _preflight)
    graph.add_node("baseline", _baseline)
    graph.add_node("triage", _triage)
    graph.add_node("plan", _plan)
    graph.add_node("agents", _agents)
    graph.add_node("integrate", _integrate)
    graph.add_node("handoff", _handoff)
    graph.add_edge(START, "preflight")
    graph.add_edge("preflight", "baseline")
    graph.add_edge("baseline", "triage")
    graph.add_edge("triage", "plan")
    graph.add_conditional_edges("plan", _fan_out, ["agents", "integrate"])
    graph.add_edge("agents", "integrate")
    graph.add_edge("integrate", "handoff")
    graph.add_edge("handoff", END)
    return graph.compile(checkpointer=checkpointer)


def checkpointer_for(state_dir: Path) -> SqliteSaver:
    """Checkpoints live in the repository's git directory, never in the working tree."""
    conn = sqlite3.connect(state_dir / "checkpoints.sqlite", check_same_thread=False)
    return SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES))

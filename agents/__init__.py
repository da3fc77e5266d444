"""Specialists: plain classes behind one small protocol, loaded by name on demand."""

from agents.base import CATEGORY_AGENT, Specialist, agent_for, load_specialist, prompt_text

__all__ = ["CATEGORY_AGENT", "Specialist", "agent_for", "load_specialist", "prompt_text"]

"""The specialists, installed as `orchestrator.agents`: libcst codemods for the mechanical causes,
and the model's tool-use loop (llm.py, tools.py) for the rest.

Agents see only the core's vocabulary (models, errors) and their workspace helpers (codemod.py);
the core loads them by name (orchestrator/specialists.py) and never imports them.
"""

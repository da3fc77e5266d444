"""`orchestrate run`: the stages (stages.py) wired into a LangGraph graph (graph.py), agent lanes
(lanes.py), integration (integrate.py), and the session that runs, resumes and reports (session.py).
"""

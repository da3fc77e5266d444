"""Every secret value, not only the API key, in any shape the model repeats it: never in a
handoff, a commit, a checkpoint, a log or the target's environment."""

from __future__ import annotations

import base64
import json

from orchestrator.git import GitRepo
from tests.agents import test_llm_run
from tests.agents.test_llm_run import CALC, CRUD, FIRST, FIX, LATER, run_cli
from tests.helpers import git
from tests.helpers.fake_anthropic import call, reply

api = test_llm_run.api  # the scripted Messages API fixture
TOKEN = "ghp_plainGithubToken0123456789"


def test_a_plain_token_repeated_by_the_model_is_written_nowhere(
    make_repo, tmp_path, capsys, api, monkeypatch
):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    shapes = [TOKEN, TOKEN[::-1], base64.b64encode(TOKEN.encode()).decode()]
    api.scripts["unknown"] = [
        reply(FIX, usage=FIRST),
        reply(call("run_tests"), usage=LATER),
        reply(call("finish", explanation="fixed; saw " + " and ".join(shapes)), usage=LATER),
    ]
    repo = make_repo({**CALC, **CRUD})

    code, report, out, err = run_cli(repo, tmp_path, capsys)

    assert code == 0, err
    written = [*(tmp_path / "handoffs").rglob("*"), *GitRepo(repo).state_dir.rglob("*")]
    history = git(repo, "log", "-p", "--format=%H%n%B", "--branches=orchestrate/*")
    texts = [
        out,
        err,
        history,
        *(p.read_bytes().decode("utf-8", "replace") for p in written if p.is_file()),
    ]
    for shape in shapes:
        assert not [t for t in texts if shape in t], shape
    assert "fixed; saw [redacted] and [redacted] and [redacted]" in history
    for request in api.agent_requests("unknown"):
        assert TOKEN not in json.dumps([r for r in request.results()])

"""What users install is what works: the wheel, in a fresh virtualenv, runs the demo's model lane."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.fake_anthropic import FakeAnthropic, call, reply

KEY = "sk-ant-install-test-0123456789"
FIX = call(
    "replace_in_file",
    path="shop/pricing.py",
    old="return round(price * percent / 100, 2)",
    new="return round(price * (100 - percent) / 100, 2)",
)
GUESS = {"title": "Discount arithmetic", "root_cause": "the discount is returned, not the price"}

# One worker builds the wheel once; two building in the same tree at once break each other.
pytestmark = pytest.mark.xdist_group("install")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel (and the demo's extra) installed: its bin dir."""
    where = tmp_path_factory.mktemp("install")
    wheels = where / "wheels"
    source = where / "source"  # setuptools builds in the tree it is given: a copy keeps ours clean
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("orchestrate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"orchestrator", "orchestrate-0.1.0.dist-info"}
    for part in ("common", "tools", "anti_cheat", "unknown", "transaction_state"):
        assert f"orchestrator/prompts/{part}.md" in names  # the model's composed prompt
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[demo]"],
        check=True,
        capture_output=True,
    )
    return venv / "bin"


def test_the_installed_package_claims_no_other_import_name(installed: Path) -> None:
    probe = "import importlib.util as u; print(u.find_spec('agents'), u.find_spec('prompts'))"
    out = subprocess.run(
        [str(installed / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=installed,  # not the source tree, whose top-level agents/ would be found
    )
    assert out.stdout.split() == ["None", "None"]


def test_the_model_lane_starts_fixes_and_is_accepted_from_the_wheel(
    installed: Path, tmp_path: Path
) -> None:
    with FakeAnthropic(guess=reply(text=json.dumps(GUESS))) as api:
        api.scripts["unknown"] = [
            reply(FIX, text="The discount is subtracted the wrong way round."),
            reply(call("run_tests")),
            reply(call("finish", explanation="price minus the discount, not the discount")),
        ]
        api.scripts["timeout"] = [
            reply(call("finish", explanation="the hang waits on nothing I can fix", declined=True))
        ]
        env = {
            **os.environ,
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": api.url,
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }
        proc = subprocess.run(
            [
                str(installed / "orchestrate"),
                "demo",
                "--no-tui",
                "--json",
                "--dir",
                str(tmp_path),
                "--timeout",
                "2",
                "--handoff-dir",
                str(tmp_path / "handoffs"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    lanes = {a["category"]: a for a in report["agents"]}
    assert lanes["unknown"]["agent"] == "llm"
    assert lanes["unknown"]["status"] == "accepted", lanes["unknown"]
    assert lanes["unknown"]["fixed"] == ["tests/test_pricing.py::test_ten_percent_off"]
    assert lanes["unknown"]["files_changed"] == ["shop/pricing.py"]
    assert report["after"]["failed"] == 1  # only the hang is left
    first = api.agent_requests("unknown")[0]
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert "Category: unknown" in first.system  # the installed prompt and the work order
    assert "# Work order:" in first.system
    assert "# What not to do (the verifier rejects it)" in first.system  # the anti-cheat part
    assert first.body["cache_control"] == {"type": "ephemeral"}  # the rolling breakpoint
    assert KEY not in proc.stdout + proc.stderr

"""Read a JUnit XML report (a CI artifact) into a SuiteRun, so triage can run on it offline."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.models import Frame, SuiteRun, TestResult

_LOCATION = re.compile(r"^(?P<path>[^\s:][^:]*\.py):(?P<line>\d+):(?: in (?P<func>\S+))?")
_ERROR_LINE = re.compile(r"^E\s+(?P<text>.*)$")
_EXC_HEAD = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Warning|Failed|Interrupt))(?::|$)"
)


def read_junit(path: Path) -> SuiteRun:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise UsageError(
            f"JUnit file {path} does not exist: pass the path of a pytest --junitxml report"
        ) from None
    except (ET.ParseError, OSError) as exc:
        raise UsageError(
            f"JUnit file {path} is not readable XML ({exc}): pass a pytest --junitxml report"
        ) from None
    cases = root.iter("testcase")
    run = SuiteRun(command=["junit", str(path)], cwd=str(path.parent))
    for case in cases:
        run.results.append(_result(case))
    if not run.results:
        raise UsageError(
            f"JUnit file {path} holds no test cases: pass the report of a run that collected tests"
        )
    run.collected = [r.nodeid for r in run.results]
    run.duration_s = sum(r.duration_s for r in run.results)
    return run


def _result(case: ET.Element) -> TestResult:
    nodeid = _nodeid(case)
    duration = float(case.get("time") or 0.0)
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        element = case.find(tag)
        if element is None:
            continue
        if outcome == "skipped":
            xfail = (element.get("type") or "") == "pytest.xfail"
            return TestResult(
                nodeid=nodeid, outcome="xfailed" if xfail else "skipped", duration_s=duration
            )
        text = element.text or ""
        exc_type, message = _exception(text, element.get("message") or "")
        when = "collect" if "collect" in (element.get("message") or "") else "call"
        if outcome == "error" and "teardown" in (element.get("message") or ""):
            when = "teardown"
        elif outcome == "error" and "setup" in (element.get("message") or ""):
            when = "setup"
        return TestResult(
            nodeid=nodeid,
            outcome=outcome,
            duration_s=duration,
            when=when,
            exc_type=exc_type,
            message=message,
            frames=_frames(text),
            longrepr=text[-4000:] or None,
        )
    return TestResult(nodeid=nodeid, outcome="passed", duration_s=duration)


def _nodeid(case: ET.Element) -> str:
    """pytest's node id from classname (dotted module + classes) and name, or the file attribute."""
    name = case.get("name") or ""
    classname = case.get("classname") or ""
    parts = classname.split(".") if classname else []
    if not classname and name:
        # A file that failed to collect: pytest writes classname="" name="pkg.test_mod".
        return case.get("file") or name.replace(".", "/") + ".py"
    if case.get("file"):
        module_path = case.get("file")
        classes = [p for p in parts if p[:1].isupper()]
    else:
        split = next((i for i, p in enumerate(parts) if p[:1].isupper()), len(parts))
        module_path = "/".join(parts[:split]) + ".py" if parts[:split] else ""
        classes = parts[split:]
    return "::".join([p for p in [module_path, *classes, name] if p])


def _exception(text: str, message: str) -> tuple[str | None, str]:
    errors = [m.group("text") for line in text.splitlines() if (m := _ERROR_LINE.match(line))]
    for line in errors:
        head = _EXC_HEAD.match(line)
        if head:
            return head.group("type"), line[len(head.group("type")) + 1 :].strip() or message
    if errors:
        return "AssertionError" if errors[0].startswith("assert") else None, "\n".join(errors[:6])
    return None, message


def _frames(text: str) -> list[Frame]:
    frames = []
    for line in text.splitlines():
        m = _LOCATION.match(line.strip())
        if m:
            frames.append(
                Frame(path=m.group("path"), line=int(m.group("line")), func=m.group("func") or "")
            )
    return frames

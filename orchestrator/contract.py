"""The contract's field names (../shared/spec/contract.md): what `--json` output keeps; every
other field of our models is an extension and stays out of it."""

FAILURE_FIELDS = {
    "nodeid",
    "outcome",
    "category",
    "signature",
    "message",
    "file",
    "line",
    "isolation",
    "polluter",
    "duration_s",
}
CATEGORY_FIELDS = {
    "id",
    "title",
    "count",
    "tests",
    "affected_files",
    "root_cause",
    "fix_strategy",
    "agent",
    "priority",
}
AGENT_FIELDS = {  # plus `usage`, our extension
    "agent",
    "category",
    "branch",
    "status",
    "fixed",
    "regressions",
    "files_changed",
    "reason",
    "usage",
}

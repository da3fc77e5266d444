"""One small error hierarchy; the CLI turns each into a one-line message and an exit code."""


class OrchestrateError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""

    exit_code = 2


class UsageError(OrchestrateError):
    """Bad input: a path, a repo, an option, a file."""


class TargetError(OrchestrateError):
    """The target's suite cannot be run as configured (no pytest, crash, nothing collected)."""


class NothingCollected(TargetError):
    """pytest collected no test: exit 5, as pytest's own."""

    exit_code = 5


class AgentError(OrchestrateError):
    """A specialist failed; the run goes on and reports it."""

    exit_code = 1


class ModelError(AgentError):
    """The model's service refused or could not be reached."""


class ModelBusy(ModelError):
    """The model's service is overloaded (529) after the SDK's retries: try again later."""


class Cancelled(OrchestrateError):
    """The user stopped the run (Ctrl-C or `q`); what finished is kept."""

    exit_code = 130

"""Upgrade breakage: which package (and version) a failure points at, which test-framework contract
changed, and the stories of those categories and of collection errors.

A dependency upgrade shows in two ways: the frame that raised sits in an installed package (numpy's
module `__getattr__` for a removed alias, SQLAlchemy's coercions for `select([...])`), or the
message names a removed or renamed name. A contract change is pytest or a plugin calling or
accepting something else than before (nose-style `setup` no longer called, `pytest.warns(None)`,
pytest-asyncio's removed `event_loop` fixture).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from orchestrator.categories.explain import FailureGroup, _top
from orchestrator.categories.rules import IMPORT_ERRORS, message_text, short_exc
from orchestrator.models import Environment, Failure, TestResult

_SITE = re.compile(r"[/\\](?:site|dist)-packages[/\\]([A-Za-z_]\w*)")
_STDLIB_OR_OURS = frozenset(
    {"builtins", "_pytest", "pytest", "pluggy", "orchestrate", "exceptions"}
)

# --- dependency upgrades ------------------------------------------------------------------------

# What the message alone says about a removed or renamed API (and, by its words, whose).
UPGRADE_PATTERNS = (
    r"\bwas removed in (?:the )?[\w.-]+ \d[\d.]*",  # numpy: "was removed in the NumPy 2.0 release"
    r"\b(?:has been|have been|was|were) (?:removed|renamed|moved)\b[^\n]{0,60}\b(?:in|since|from|to) (?:version |v)?[`'\"]?\w",
    r"has been moved to the `[\w-]+` package",
    r"\bDid you mean to say select\(",
    r"\bNot an executable object: ['\"]",
    r"Textual SQL expression .{0,80}should be explicitly declared as text\(",
    r"'(?:Engine|Connection|OptionEngine)' object has no attribute '(?:execute|has_table|table_names|run_callable|scalar)'",
    r"\b(?:RemovedIn\d+Warning|MovedIn20Warning|PydanticDeprecatedSince\d+)\b",
    r"\bmodule ['‘](?:numpy|np)['’] has no attribute\b",
    r"was a deprecated alias for the builtin",  # numpy 1.24 removed np.int, np.float, ...
    # names removed from the standard library (Python 3.10, 3.12)
    r"cannot import name '(?:Mapping|MutableMapping|Sequence|MutableSequence|Iterable|Iterator|"
    r"Callable|Set|MutableSet|Hashable|Container|Sized|Awaitable|Generator)' from 'collections'",
    r"No module named '(?:distutils|imp|asynchat|asyncore|smtpd)'",
    r"module 'asyncio' has no attribute 'coroutine'",
    r"object has no attribute '(?:assertEquals|assertNotEquals|assertItemsEqual|"
    r"assertDictContainsSubset|assertRegexpMatches|failUnless|assert_)'",
    r"cannot import name '(?:getargspec|formatargspec)' from 'inspect'",
    # well-known removals of popular libraries
    r"cannot import name '(?:url_quote|url_encode|url_decode|safe_str_cmp|cached_property|"
    r"secure_filename|import_string)' from 'werkzeug",
    r"cannot import name '(?:escape|Markup|contextfunction|evalcontextfilter|environmentfilter|"
    r"contextfilter)' from '(?:jinja2|flask)'",
    r"cannot import name 'soft_unicode' from 'markupsafe'",
    r"cannot import name '(?:ugettext|ugettext_lazy|ungettext|force_text|smart_text|url)' from 'django",
    r"'DataFrame' object has no attribute '(?:append|iteritems)'",
    r"cannot import name '\w+' from '[\w.]+' \([^)\n]*(?:site|dist)-packages",
    r"`[\w.]+` (?:is|has been) (?:removed|deprecated and removed)",
    r"If you use `@root_validator` with pre=False",
    r"\bValid config keys have changed in V2\b",
    r"\bunexpected keyword argument '\w+'[^\n]{0,40}\bremoved\b",
)
UPGRADE_EXC_TYPES = frozenset(
    {
        "PydanticUserError",
        "PydanticImportError",
        "PydanticRemovedInV2Error",
        "RemovedIn20Warning",
        "MovedIn20Warning",
        "ObjectNotExecutableError",
        "SchemaError",  # pydantic-core's, when a v1 model no longer builds under v2
    }
)
# An exception of these types raised inside an installed package is an API mismatch, with one of
# these words in its message.
_API_ERRORS = frozenset({"AttributeError", "TypeError", "ImportError", "ArgumentError"})
_API_WORDS = re.compile(
    r"has no attribute|unexpected keyword|cannot import name|positional argument|"
    r"got multiple values|removed|renamed|no longer|deprecated|not supported",
    re.I,
)


def raised_in_installed_package(result: TestResult) -> bool:
    """The innermost frame is a library's and the error is about the API's shape."""
    if not result.frames or short_exc(result.exc_type) not in _API_ERRORS:
        return False
    return bool(_SITE.search(result.frames[-1].path)) and bool(
        _API_WORDS.search(result.message or "")
    )


# The message's words for a package, when it names one (numpy's "NumPy 2.0", pytest's "np.").
_NAMED = (
    (re.compile(r"\bNumPy\b|`\[?np\.\w+|\bnp\.\w+ was removed|module ['‘]numpy"), "numpy"),
    (
        re.compile(
            r"select\(\)|select\(\.\.\.\)|\bselect\(\[|Not an executable object|Textual SQL|"
            r"'(?:Engine|Connection|OptionEngine)' object|RemovedIn20Warning|MovedIn20Warning|SQLAlchemy"
        ),
        "sqlalchemy",
    ),
    (
        re.compile(
            r"\bPydantic\b|pydantic|@root_validator|`orm_mode`|config keys have changed in V2"
        ),
        "pydantic",
    ),
    (re.compile(r"\bdjango\b", re.I), "django"),
    (re.compile(r"from 'werkzeug"), "werkzeug"),
    (
        re.compile(
            r"from '(?:collections|inspect)'|module 'asyncio'|No module named '(?:distutils|imp)'"
        ),
        "python",
    ),
)
_FROM_MODULE = re.compile(
    r"cannot import name '\w+' from '([\w.]+)'|module '([\w.]+)' has no attribute"
)


def package_of(result: TestResult, env: Environment | None = None) -> str:
    """The distribution a failure points at: by the exception's module, the message's words,
    the module it names, or the innermost library frame."""
    top = ""
    module = (result.exc_type or "").rsplit(".", 1)[0] if "." in (result.exc_type or "") else ""
    if module and module.split(".")[0] not in _STDLIB_OR_OURS:
        top = module.split(".")[0]
    text = message_text(result)
    if not top:
        top = next((name for rx, name in _NAMED if rx.search(text)), "")
    if not top and (m := _FROM_MODULE.search(text)):
        top = (m.group(1) or m.group(2)).split(".")[0]
    if not top:
        frames = [m.group(1) for f in result.frames if (m := _SITE.search(f.path))]
        top = frames[-1] if frames else ""
    if not top:
        return "a dependency"
    return env.distribution(top) if env else top


@dataclass(frozen=True)
class Migration:
    """What an upgrade of one package usually needs, and the tool that does it."""

    what: str
    fix: str


MIGRATIONS: dict[str, Migration] = {
    "numpy": Migration(
        "NumPy 2.0 removed aliases and functions (np.float_, np.NaN, np.Inf, np.product, ...)",
        "apply ruff's NPY201 autofix (`ruff check --select NPY201 --fix`): it rewrites every removed alias",
    ),
    "sqlalchemy": Migration(
        "SQLAlchemy 2.0 removed select([...]), engine.execute() and plain SQL strings",
        "select(a, b) instead of select([a, b]); `with engine.begin() as conn: conn.execute(...)` "
        "instead of engine.execute(); text() around SQL strings",
    ),
    "pydantic": Migration(
        "Pydantic v2 renamed validators, Config and Field arguments and moved BaseSettings",
        "run bump-pydantic on the project (validators -> field_validator/model_validator, "
        "Config -> model_config, regex -> pattern)",
    ),
    "django": Migration(
        "Django removed deprecated aliases (ugettext, force_text, url(), ...)",
        "run django-upgrade --target-version for the installed Django",
    ),
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def migration(package: str) -> Migration | None:
    return MIGRATIONS.get(_canonical(package))


def upgrade_story(
    package: str, env: Environment | None, messages: Counter[str], where: Counter[str]
) -> tuple[str, str]:
    """(what was seen, the fix) for the failures pointing at one package."""
    facts = env.describe(package) if env else f"{package} (installed version not seen)"
    known = migration(package)
    change = env.change(package) if env else None
    parts = [facts]
    if known:
        parts.append(known.what)
    parts.append("raised: " + _top(messages, 2))
    if where:
        parts.append("called from " + _top(where, 3))
    if known:
        fix = known.fix
    else:
        versions = f" {change.old} -> {change.new}" if change and change.old and change.new else ""
        fix = (
            f"migrate the calls to {package}'s new API (its changelog{versions} names each removal)"
        )
    if change and change.old:
        fix += f"; or pin {package} back to {change.old} until the code is migrated"
    return "; ".join(parts), fix


# --- test-framework contracts -------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """One change of what pytest or a plugin calls or accepts."""

    key: str
    pattern: str
    package: str
    what: str
    fix: str


NOSE = "nose-setup"  # recognised from the test file (triage's evidence), not the message

CONTRACTS: tuple[Contract, ...] = (
    Contract(
        "warns-none",
        r"exceptions must be derived from Warning, not <class 'NoneType'>|Passing None has been deprecated",
        "pytest",
        "pytest 8 rejects pytest.warns(None)",
        "record warnings with warnings.catch_warnings(record=True) (or assert none with "
        'warnings.simplefilter("error"))',
    ),
    Contract(
        "event-loop",
        r"fixture 'event_loop' not found|event_loop fixture provided by pytest-asyncio has been redefined",
        "pytest-asyncio",
        "pytest-asyncio 1.0 removed the event_loop fixture",
        "use asyncio.get_running_loop() inside async tests, a loop of their own in sync ones, "
        "and loop_scope= for a loop shared by a module or session",
    ),
    Contract(
        "async-unsupported",
        r"async def functions are not natively supported",
        "pytest",
        "pytest 8.4 fails async tests that no plugin runs",
        "install pytest-asyncio (or anyio) and mark the tests, or set asyncio_mode = auto",
    ),
    Contract(
        "yield-tests",
        r"yield tests were removed",
        "pytest",
        "pytest no longer runs yield-based tests",
        "turn each yielded check into a parametrized test",
    ),
    Contract(
        "return-value",
        r"Expected None, but test returned|returned non-None|Test functions should return None",
        "pytest",
        "pytest 8.4 fails tests that return a value",
        "assert the value instead of returning it",
    ),
    Contract(
        "plugin-fixture",
        r"fixture '(?:mocker|httpx_mock|requests_mock|benchmark|aiohttp_client|loop|freezer|snapshot|"
        r"anyio_backend|django_db_setup|settings|rf|admin_client|live_server|celery_app|faker|"
        r"datadir|shared_datadir|xprocess|docker_ip|docker_services|respx_mock|time_machine)' not found",
        "a pytest plugin",
        "a fixture the tests use comes from a plugin that is not installed (or no longer provides it)",
        "install the plugin that provides the fixture in the test environment, or define it",
    ),
    Contract(
        "strict-markers",
        r"not found in `markers` configuration option|PytestUnknownMarkWarning",
        "pytest",
        "the marker is not registered and markers are strict",
        "register the markers under [tool.pytest.ini_options] markers",
    ),
    Contract(
        "mock-assertion",
        r"is not a valid assertion\.\s+Use a spec for the mock",
        "python",
        "unittest.mock (Python 3.12) rejects misspelled assertion methods it used to accept silently",
        "call the real assert_* method (assert_called_once_with, not called_once_with) and fix "
        "what it then finds",
    ),
    Contract(
        "removed-api",
        r"\bPytestRemovedIn\d+Warning\b|\bPytestDeprecationWarning\b",
        "pytest",
        "the tests use a pytest API that the installed pytest removed",
        "follow the warning's replacement (pytest's deprecations page names each one)",
    ),
)
CONTRACT_PATTERNS = tuple(c.pattern for c in CONTRACTS)
_CONTRACT_RX = [(c, re.compile(c.pattern, re.I | re.M)) for c in CONTRACTS]
NOSE_CONTRACT = Contract(
    NOSE,
    "",
    "pytest",
    "pytest 8 no longer calls nose-style setup()/teardown() (methods or module functions)",
    "rename them to setup_method/teardown_method (setup_module/teardown_module at module level)",
)


def contract_of(result: TestResult) -> Contract:
    """The contract a failure shows; nose-style setup when no message says otherwise."""
    text = message_text(result) + "\n" + (result.longrepr or "")[-2000:]
    return next((c for c, rx in _CONTRACT_RX if rx.search(text)), NOSE_CONTRACT)


def contract_story(contract: Contract, env: Environment | None, count: int) -> tuple[str, str]:
    version = env.describe(contract.package) if env and env.version(contract.package) else ""
    seen = f"{contract.what} ({count} tests)" + (f"; {version}" if version else "")
    return seen, contract.fix


# --- collection errors ----------------------------------------------------------------------------

_TEST_FILE = re.compile(r"(?:^|/)(?:test_[^/]*|[^/]*_test|conftest)\.py$")
_IMPORT_NAME = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'|No module named '([\w.]+)'")


def collection_story(items: list[tuple[TestResult, Failure]]) -> tuple[str, str]:
    """Where each collection error really starts: the project failing to import (its own module
    raises) or a test importing a name that moved."""
    project: Counter[str] = Counter()
    moved: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for result, failure in items:
        messages[message_text(result).splitlines()[0][:160] if message_text(result) else "?"] += 1
        site = f"{failure.file}:{failure.line}" if failure.file and failure.line else ""
        in_tests = not failure.file or bool(_TEST_FILE.search(failure.file))
        if site and not in_tests:
            project[site] += 1
        else:
            m = _IMPORT_NAME.search(result.message or "")
            name = (f"{m.group(1)} from {m.group(2)}" if m.group(1) else m.group(3)) if m else ""
            moved[f"{name} in {site or failure.nodeid}" if name else site or failure.nodeid] += 1
    files = len(items)
    noun = "test module" if files == 1 else "test modules"
    parts = [f"{files} {noun} could not be collected, so none of their tests ran"]
    fixes = []
    if project:
        parts.append(f"the project's own code fails to import at {_top(project, 3)}")
        fixes.append(f"fix the project's import-time error at {_top(project, 3)} (not the tests)")
    if moved:
        parts.append(f"tests import names that moved or are gone: {_top(moved, 3)}")
        fixes.append(f"import the names from where they live now: {_top(moved, 3)}")
    if short_exc_names := sorted({short_exc(r.exc_type) for r, _ in items} - IMPORT_ERRORS - {""}):
        parts.append("raised " + ", ".join(short_exc_names))
    parts.append("first error: " + messages.most_common(1)[0][0])
    return "; ".join(parts), "; ".join(fixes)


# --- the explainers -------------------------------------------------------------------------------


def _first_lines(g: FailureGroup) -> Counter[str]:
    return Counter(text.splitlines()[0][:160] for text in g.texts if text)


def dependency_upgrade(g: FailureGroup) -> tuple[str, str]:
    packages = Counter(package_of(r, g.environment) for r, _ in g.items)
    package = packages.most_common(1)[0][0]
    seen, fix = upgrade_story(package, g.environment, _first_lines(g), g.where)
    others = [p for p in packages if p != package]
    return seen + (f"; also {', '.join(others)}" if others else ""), fix


def test_framework_contract(g: FailureGroup) -> tuple[str, str]:
    contracts = Counter(contract_of(r) for r, _ in g.items)
    contract, count = contracts.most_common(1)[0]
    seen, fix = contract_story(contract, g.environment, count)
    where = _top(g.test_files, 3)
    return f"{seen} in {where}", fix


def collection_error(g: FailureGroup) -> tuple[str, str]:
    return collection_story(g.items)

"""Where tests drive containers: docker CLI calls (argument lists and shell strings), the project's
own helpers around them (`docker("pause", NAME)`, `self.docker(f"stop {NAME}")`), and SDK objects
(`redis_container.pause()`). Each is read into an `Action` that can write its own restore."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import syntax

VERBS = ("pause", "unpause", "stop", "start")
RESTORE = {"pause": "unpause", "stop": "start"}
_RUNNERS = ("run", "call", "check_call", "check_output", "Popen", "system")


def code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


@dataclass(frozen=True)
class Action:
    """One docker verb applied to one container by one call."""

    verb: str
    container: str  # the code naming the container: `"cos_redis"`, `REDIS`
    call: cst.Call
    kind: str  # "cli" (a command list), "shell" (a command string), "helper", "sdk"
    docker: str | None = None  # the code of the docker executable, when not plain "docker"

    def restore(self) -> cst.SimpleStatementLine:
        """The restoring call, written like this one with the verb swapped."""
        verb = RESTORE[self.verb]
        if self.kind == "sdk":
            assert isinstance(self.call.func, cst.Attribute)  # an SDK action is a method call
            new = self.call.with_changes(func=self.call.func.with_changes(attr=cst.Name(verb)))
        else:
            args = list(self.call.args)
            index = next(i for i, a in enumerate(args) if _names_verb(a.value, self.verb))
            args[index] = args[index].with_changes(value=_swap(args[index].value, self.verb, verb))
            new = self.call.with_changes(args=args)
        return cst.SimpleStatementLine([cst.Expr(new)])

    def wait(self) -> cst.SimpleStatementLine:
        """A bounded wait until the container runs again."""
        if self.kind == "sdk":
            text = f"_wait_until_running_sdk({self.container})"
        else:
            extra = f", {self.docker}" if self.docker else ""
            text = f"_wait_until_running({self.container}{extra})"
        return cst.SimpleStatementLine([cst.Expr(cst.parse_expression(text))])


def find_action(stmt: cst.CSTNode, helpers: set[str]) -> Action | None:
    """The first docker action in a statement."""
    for call in syntax.find_all(stmt, m.Call(), cst.Call):
        action = _cli(call) or _helper(call, helpers) or _sdk(call)
        if action is not None:
            return action
    return None


def helpers(modules: list[cst.Module]) -> set[str]:
    """Functions and methods that pass their arguments on to the docker CLI."""
    found: set[str] = set()
    for module in modules:
        for func, _ in syntax.functions(module):
            star = func.params.star_arg
            params = set(syntax.param_names(func))
            if isinstance(star, cst.Param):
                params.add(star.name.value)
            for call in syntax.find_all(func, m.Call(), cst.Call):
                if _is_runner(call) and _passes_params(call.args[0].value, params):
                    found.add(func.name.value)
    return found


def _is_runner(call: cst.Call) -> bool:
    return bool(call.args) and syntax.dotted(call.func).split(".")[-1] in _RUNNERS


def _passes_params(command: cst.BaseExpression, params: set[str]) -> bool:
    """`["docker", *args]`, `["docker", verb, name]`, `f"docker {command}"`, `"docker " + cmd`."""
    text = _text(command)
    if isinstance(command, cst.List) and command.elements:
        head = syntax.string_value(command.elements[0].value) or ""
        names = {syntax.dotted(e.value) for e in command.elements[1:]}
        return head.endswith("docker") and bool(names & params)
    names = {n.value for n in syntax.find_all(command, m.Name(), cst.Name)}
    return text.startswith("docker ") and bool(names & params)


def _text(node: cst.BaseExpression) -> str:
    """The literal text leading a string, f-string or `"..." + x` (placeholders as `{}`)."""
    if isinstance(node, cst.SimpleString):
        return syntax.string_value(node) or ""
    if isinstance(node, cst.FormattedString):
        return "".join(
            p.value if isinstance(p, cst.FormattedStringText) else "{}" for p in node.parts
        )
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        return _text(node.left) + "{}"
    return ""


def _container_in(node: cst.BaseExpression, after: str) -> str | None:
    """The code of the container named in a command string after its verb."""
    text = _text(node)
    match = re.match(rf"(?:\S*docker\s+)?{after}\s+(\S+)", text)
    if match is None:
        return None
    if match[1] == "{}":  # a placeholder: the expression that fills it
        if isinstance(node, cst.FormattedString):
            expr = next(p for p in node.parts if isinstance(p, cst.FormattedStringExpression))
            return code(expr.expression)
        if isinstance(node, cst.BinaryOperation):
            return code(node.right)
        return None
    return f'"{match[1]}"'


def _verb_of(node: cst.BaseExpression) -> str | None:
    words = _text(node).split()
    words = words[1:] if words and words[0].endswith("docker") else words
    return words[0] if words and words[0] in VERBS else None


def _cli(call: cst.Call) -> Action | None:
    """subprocess.X(["docker", verb, name]) or subprocess.X(f"docker {verb} {name}", shell=True)."""
    if not _is_runner(call):
        return None
    command = call.args[0].value
    if isinstance(command, cst.List) and len(command.elements) >= 3:
        values = [syntax.string_value(e.value) for e in command.elements]
        if not (values[0] or "").endswith("docker"):
            return None
        docker = None if values[0] == "docker" else code(command.elements[0].value)
        for index, value in enumerate(values[1:-1], start=1):
            if value in VERBS:
                container = code(command.elements[index + 1].value)
                return Action(value, container, call, "cli", docker)
        return None
    if not _text(command).startswith("docker "):
        return None
    verb = _verb_of(command)
    shell = _container_in(command, verb) if verb else None
    return Action(verb, shell, call, "shell") if verb and shell else None


def _helper(call: cst.Call, names: set[str]) -> Action | None:
    """`docker("pause", NAME)`, `self.docker(f"pause {NAME}")`: a helper of the project."""
    callee = syntax.dotted(call.func).removeprefix("self.").removeprefix("cls.")
    if callee not in names or not call.args:
        return None
    first = call.args[0].value
    verb = _verb_of(first)
    if verb is None:
        return None
    if syntax.string_value(first) == verb:  # the verb alone; the container is the next argument
        container = code(call.args[1].value) if len(call.args) > 1 else None
    else:
        container = _container_in(first, verb)
    return Action(verb, container, call, "helper") if container else None


def _sdk(call: cst.Call) -> Action | None:
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in VERBS and not call.args:
        owner = code(func.value)
        if "container" in owner.lower():
            return Action(func.attr.value, owner, call, "sdk")
    return None


def _names_verb(node: cst.BaseExpression, verb: str) -> bool:
    if isinstance(node, cst.List):
        return any(syntax.string_value(e.value) == verb for e in node.elements)
    return _verb_of(node) == verb


def _swap(node: cst.BaseExpression, verb: str, new: str) -> cst.BaseExpression:
    """The command (list, string, f-string or concatenation) with `verb` replaced by `new`."""
    if isinstance(node, cst.List):
        return node.with_changes(
            elements=[
                e.with_changes(value=syntax.with_string(e.value, new))
                if isinstance(e.value, cst.SimpleString) and syntax.string_value(e.value) == verb
                else e
                for e in node.elements
            ]
        )
    pattern = re.compile(rf"\b{verb}\b")
    if isinstance(node, cst.SimpleString):
        return node.with_changes(value=pattern.sub(new, node.value, count=1))
    if isinstance(node, cst.FormattedString):
        parts = list(node.parts)
        index = next(i for i, p in enumerate(parts) if isinstance(p, cst.FormattedStringText))
        text = parts[index]
        assert isinstance(text, cst.FormattedStringText)
        parts[index] = text.with_changes(value=pattern.sub(new, text.value, count=1))
        return node.with_changes(parts=parts)
    if isinstance(node, cst.BinaryOperation):
        return node.with_changes(left=_swap(node.left, verb, new))
    return node

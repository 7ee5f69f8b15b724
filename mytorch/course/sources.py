"""The source of each graded component, cut out of its reference module."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

from mytorch.registry import Component

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"

_SOLUTION_REGION = re.compile(
    rf"^([ \t]*){re.escape(BEGIN_SOLUTION)}[^\n]*\n.*?^[ \t]*{re.escape(END_SOLUTION)}[^\n]*$",
    re.DOTALL | re.MULTILINE,
)


def module_path(module: str) -> Path:
    """Find the file of `module` without importing it, since grading mode may forbid that."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a parent package is missing
        spec = None
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"module {module} not found: the registry names it, so create it")
    return Path(spec.origin)


def component_source(component: Component) -> str:
    """Return the source of the class or function `component.name` in its module.

    Decorators are included. Raises ValueError if the definition is missing or has no
    ``### BEGIN SOLUTION`` region, since then there would be nothing for a student to write.
    """
    path = module_path(component.module)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()

    for node in ast.parse(text, filename=str(path)).body:
        is_definition = isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        if is_definition and node.name == component.name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            last = _end_with_trailing_comments(lines, node)
            source = "\n".join(lines[first - 1:last])
            break
    else:
        raise ValueError(f"{path}: no top-level definition of {component.name}")

    if BEGIN_SOLUTION not in source or END_SOLUTION not in source:
        raise ValueError(
            f"{path}: {component.name} has no '{BEGIN_SOLUTION}' ... '{END_SOLUTION}' region"
        )
    return source


def _end_with_trailing_comments(lines: list[str], node: ast.stmt) -> int:
    """Return the definition's last line, counting the comments indented inside it after its code.

    The AST ends a definition at its last statement, but a body that ends with a solution
    region still owns the ``### END SOLUTION`` comment below that statement.
    """
    indent = len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())
    last = node.end_lineno
    for number in range(node.end_lineno + 1, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            continue
        if line.lstrip().startswith("#") and len(line) - len(line.lstrip()) > indent:
            last = number
            continue
        break
    return last


def strip_solutions(source: str, message: str) -> str:
    """Replace every solution region of `source` by ``raise NotImplementedError(message)``.

    The replacement keeps the region's indentation, like nbgrader's code stub.
    """
    def stub(match: re.Match) -> str:
        indent = match.group(1)
        return f"{indent}raise NotImplementedError({message!r})"

    return _SOLUTION_REGION.sub(stub, source)

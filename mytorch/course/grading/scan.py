"""Static scan of a submission's own code for behaviour aimed at the grader.

Nothing here decides a score: the sandbox and the tests do. The scan names what a student's
cells try, so that the instructor's report has a line for each: patching the libraries the
tests use, reading course files, ending the kernel, ignoring interrupts, importing hidden
references, reading the code of executed cells. Locked cells (set-up, tests) are the
instructor's and are not scanned.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager

from mytorch import registry

# Modules whose attributes the tests may rely on; assigning to them is patching.
PATCHED_ROOTS = {"numpy", "torch", "mytorch", "builtins", "math", "IPython", "sys", "unittest"}
ERROR_HOOKS = {"showtraceback", "set_custom_exc", "excepthook", "displayhook", "settrace",
               "setprofile", "_showtraceback", "showsyntaxerror"}
INTROSPECTION = {("sys", "_getframe"), ("inspect", "stack"), ("inspect", "getsource"),
                 ("inspect", "currentframe"), ("inspect", "getouterframes"),
                 ("linecache", "getline"), ("linecache", "getlines")}
HISTORY_NAMES = {"In", "_ih", "_i", "_ii", "_iii"}
COURSE_PATH_MARKERS = ("solutions", "gradebook", "autograder", "nbgrader", "source/",
                       "submitted", "autograded", ".ipynb")
NETWORK_MODULES = {"socket", "urllib", "requests", "http", "ftplib", "smtplib", "httpx", "aiohttp"}
PROCESS_CALLS = {("os", "system"), ("os", "popen"), ("os", "fork"), ("os", "execv"),
                 ("os", "execve"), ("os", "spawnl"), ("pty", "spawn")}
GRADING_VARIABLES = (registry.GRADING_ENV, "NBGRADER_EXECUTION")


@dataclass(frozen=True)
class Finding:
    cell: str  # "cell 5 ('softmax')"
    message: str

    def line(self) -> str:
        return f"{self.cell}: {self.message}"


def _python_source(source: str) -> str:
    """Turn IPython syntax (magics, ``!shell``) into Python, as the kernel does."""
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython's transformers raise several kinds on odd input
        return source


def _dotted(node: ast.AST) -> list[str] | None:
    """Return ["np", "testing", "assert_allclose"] for ``np.testing.assert_allclose``, and
    ["get_ipython()", "showtraceback"] for ``get_ipython().showtraceback``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    if isinstance(node, ast.Call):
        inner = _dotted(node.func)
        if inner:
            return inner[:-1] + [inner[-1] + "()"] + parts[::-1]
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], assignment: str, test_names: set[str]):
        self.aliases = dict(aliases)
        self.messages: list[str] = []
        self.test_names = test_names
        self.hidden_modules = {c.module for c in registry.COMPONENTS
                               if registry.is_hidden(c, assignment)}
        self.hidden_names = {c.name for c in registry.COMPONENTS if registry.is_hidden(c, assignment)}
        self.loop_depth = 0

    def add(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)

    def resolve(self, parts: list[str]) -> str:
        head = self.aliases.get(parts[0], parts[0])
        return ".".join([head] + parts[1:])

    # imports ---------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0])
            self._check_module(alias.name, [])
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self._check_module(module, [alias.name for alias in node.names])
        self.generic_visit(node)

    def _check_module(self, module: str, names: list[str]) -> None:
        root = module.split(".")[0]
        if module in self.hidden_modules or any(module.startswith(m + ".") for m in self.hidden_modules):
            self.add(f"imports the hidden reference module {module} (grading mode hides it)")
        elif root == "mytorch" and set(names) & self.hidden_names:
            hidden = ", ".join(sorted(set(names) & self.hidden_names))
            self.add(f"imports the hidden reference {hidden} from {module} (grading mode hides it)")
        if root in NETWORK_MODULES:
            self.add(f"imports {module}, for network access (the sandbox has no network)")
        if root == "subprocess":
            self.add("imports subprocess, to start processes")

    # assignments: patching ---------------------------------------------------------------

    def _check_target(self, target: ast.AST, constant: bool) -> None:
        """Name what assigning to `target` patches; `constant` marks a literal value."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element, constant)
            return
        if isinstance(target, ast.Name) and target.id in self.test_names:
            self.add(f"rebinds '{target.id}', a name the tests use")
            return
        parts = _dotted(target) if isinstance(target, ast.Attribute) else None
        if not parts:
            return
        name = self.resolve(parts)
        if parts[-1] in ERROR_HOOKS:
            self.add(f"replaces {name}, which hides errors from the grader")
        elif name.split(".")[0] in PATCHED_ROOTS and not constant:
            # Setting a flag such as torch.backends.cudnn.deterministic = True is
            # configuration; replacing a library function is patching.
            self.add(f"monkeypatches {name}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, isinstance(node.value, ast.Constant))
        self.generic_visit(node)

    # calls -------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        parts = _dotted(node.func)
        if parts:
            name = self.resolve(parts)
            last = parts[-1]
            pair = tuple(name.split(".")[-2:]) if "." in name else ("", name)
            if name in ("os._exit", "posix._exit") or last == "_exit":
                self.add("calls os._exit, which ends the kernel")
            elif name in ("signal.signal", "signal.pthread_sigmask", "signal.siginterrupt"):
                self.add(f"calls {name}, which can make the kernel ignore the grader's interrupt")
            elif last == "setattr" and node.args:
                target = _dotted(node.args[0])
                if target and self.resolve(target).split(".")[0] in PATCHED_ROOTS:
                    self.add(f"monkeypatches {self.resolve(target)} with setattr")
            elif last in ERROR_HOOKS:
                self.add(f"calls {name}, which changes how errors reach the grader")
            elif pair in INTROSPECTION or name.startswith("linecache."):
                self.add(f"calls {name}, which can read the code of executed cells, hidden "
                         f"tests included")
            elif pair in PROCESS_CALLS or name.startswith("subprocess.") or last == "system":
                self.add(f"starts a process with {name}")
            elif name.endswith("events.register"):
                self.add("registers an IPython event callback, which runs around every cell, "
                         "tests included")
            elif last in ("import_module", "__import__") and node.args:
                argument = node.args[0]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    self._check_module(argument.value, [])
        self.generic_visit(node)

    # definitions -------------------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name in ("__eq__", "__ne__", "__bool__", "__array__") and _returns_constant(node):
            value = _returns_constant(node)
            self.add(f"defines {node.name} that always returns {value}, to pass equality checks")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_While(self, node: ast.While) -> None:
        self.loop_depth += 1
        self.generic_visit(node)
        self.loop_depth -= 1

    visit_For = visit_While

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        names = set()
        if node.type is None:
            names.add("everything")
        else:
            for element in (node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]):
                parts = _dotted(element)
                if parts:
                    names.add(parts[-1])
        caught = names & {"everything", "KeyboardInterrupt", "BaseException"}
        if caught and self.loop_depth:
            self.add("catches KeyboardInterrupt inside a loop, which ignores the grader's "
                     "interrupt")
        self.generic_visit(node)

    # names and constants -----------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in HISTORY_NAMES and isinstance(node.ctx, ast.Load):
            self.add(f"reads IPython's history ({node.id}), which holds the code of executed "
                     f"cells, hidden tests included")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            text = node.value
            if any(variable in text for variable in GRADING_VARIABLES):
                self.add(f"refers to the grading-mode variable {text!r}")
            elif "/" in text or text.endswith((".ipynb", ".db")):
                marker = next((m for m in COURSE_PATH_MARKERS if m in text), None)
                if marker:
                    self.add(f"refers to course files ({text[:80]!r})")
        self.generic_visit(node)


def _returns_constant(node: ast.FunctionDef) -> str | None:
    """Return 'True' or 'False' if every return of `node` is that constant."""
    returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
    values = {repr(r.value.value) for r in returns
              if isinstance(r.value, ast.Constant) and isinstance(r.value.value, bool)}
    if returns and len(values) == 1 and all(isinstance(r.value, ast.Constant) for r in returns):
        return values.pop()
    return None


def _aliases_of(sources: list[str]) -> tuple[dict[str, str], set[str]]:
    """Return the import aliases and imported names that the instructor's cells define."""
    aliases: dict[str, str] = {}
    names: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(_python_source(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    key = alias.asname or alias.name.split(".")[0]
                    aliases[key] = alias.name if alias.asname else alias.name.split(".")[0]
                    names.add(key)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    key = alias.asname or alias.name
                    aliases[key] = f"{node.module}.{alias.name}"
                    names.add(key)
    return aliases, names


def scan_notebook(notebook, assignment: str) -> list[Finding]:
    """Scan the code cells of `notebook` that are not locked; return one finding per behaviour."""
    locked_sources = []
    student_cells = []
    for position, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        label = f"cell {position + 1} ('{grade_id}')" if grade_id else f"cell {position + 1}"
        if meta.get("locked") and not meta.get("solution"):
            locked_sources.append(cell.source)
        else:
            student_cells.append((label, cell.source))

    aliases, test_names = _aliases_of(locked_sources)
    findings = []
    for label, source in student_cells:
        scanner = _Scanner(aliases, assignment, test_names)
        python = _python_source(source)
        if "get_ipython().system(" in python or "get_ipython().getoutput(" in python:
            scanner.add("runs shell commands (!)")
        try:
            tree = ast.parse(python)
        except SyntaxError:
            continue
        scanner.visit(tree)
        findings.extend(Finding(label, message) for message in scanner.messages)
    return findings

"""The hazard log tied to the tests: `python -m carerecord.hazards --check` (in `make check`) and `--report`.

DCB0129 asks that every control the software provides is shown to work. Here each (software) control in the
log names the tests that prove it, and those tests carry the hazard's id (`@pytest.mark.hazard("H-07")` on a
function or class, or a module's `pytestmark`). `--check` fails when the log and the tests disagree:
- a hazard with a (software) control and no test tagged with its id;
- a (software) control that names no test;
- a test the log names that does not exist, or is not tagged with that hazard;
- a test tagged with an id the log does not hold;
- a record missing a field, a control marked neither (software) nor (procedural: ...), or a risk rating that
  is not the DCB0129 matrix's for its severity and likelihood;
- the generated tables in safety-case.md out of date (`--report` writes them).

Only files are read (the log, the case, and tests/ through `ast`): no Django, no test is run, so it is fast.
"""

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "docs" / "clinical-safety" / "hazard-log.md"
CASE = ROOT / "docs" / "clinical-safety" / "safety-case.md"
TESTS = ROOT / "tests"
START, END = "<!-- hazard-tests:start -->", "<!-- hazard-tests:end -->"

HEADING = re.compile(r"^## (H-\d{2}) (.+?)\s*$", re.MULTILINE)
FIELD = re.compile(r"^- \*\*(.+?)\*\*:\s*(.*)$")
BULLET = re.compile(r"^(\s+)[-*] (.*)$")
KIND = re.compile(r"^\((software|procedural: [^)]+)\)\s+\S")
RISK = re.compile(r"severity ([1-5])\b.*?likelihood ([1-5])\b.*?risk ([1-5])\b")
NODE = re.compile(r"`([^`\s]+::[^`\s]+)`")
REQUIRED = ("Cause", "Effect", "Initial risk", "Controls", "Residual risk")

# DCB0129's clinical risk matrix: MATRIX[likelihood - 1][severity - 1] is the risk rating (1 acceptable ...
# 5 unacceptable). Severity 1 minor ... 5 catastrophic; likelihood 1 very low ... 5 very high.
MATRIX = (
    (1, 1, 2, 2, 3),
    (1, 2, 2, 3, 4),
    (2, 2, 3, 3, 4),
    (2, 3, 3, 4, 5),
    (3, 4, 4, 5, 5),
)


@dataclass
class Control:
    text: str

    @property
    def kind(self) -> str | None:
        """ "software", "procedural: training" ..., or None when unmarked."""
        match = KIND.match(self.text)
        return match.group(1) if match else None

    @property
    def software(self) -> bool:
        return self.kind == "software"

    @property
    def tests(self) -> list[str]:
        """The node ids it names; `…::name` means the file of the node before it."""
        nodes, path = [], ""
        for node in NODE.findall(self.text):
            head, _, rest = node.partition("::")
            if head in ("…", "..."):
                head = path
            path = head
            nodes.append(f"{head}::{rest}")
        return nodes

    @property
    def summary(self) -> str:
        words = NODE.sub("", self.text.removeprefix(f"({self.kind})")).split("Tests:")[0].split()
        text = " ".join(words)
        return text if len(text) <= 60 else text[:57].rstrip() + "..."


@dataclass
class Hazard:
    id: str
    title: str
    fields: dict[str, list[str]] = field(default_factory=dict)

    @property
    def controls(self) -> list[Control]:
        """The bullets under **Controls**, each with its continuation lines."""
        controls, indent = [], None
        for line in self.fields.get("Controls", []):
            bullet = BULLET.match(line)
            if bullet and (indent is None or len(bullet.group(1)) <= indent):
                indent = len(bullet.group(1))
                controls.append(Control(bullet.group(2).strip()))
            elif controls:
                controls[-1].text += " " + line.strip()
        return controls

    @property
    def has_software_control(self) -> bool:
        return any(control.software for control in self.controls)

    def risk(self, name: str) -> tuple[int, int, int] | None:
        """(severity, likelihood, rating) of "Initial risk" or "Residual risk", as written."""
        match = RISK.search(" ".join(self.fields.get(name, [])))
        return tuple(map(int, match.groups())) if match else None


def parse_log(text: str) -> dict[str, Hazard]:
    """One Hazard per `## H-NN title` heading, with its `- **Field**: ...` lines (and their continuations)."""
    hazards = {}
    headings = list(HEADING.finditer(text))
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        hazard = Hazard(heading.group(1), heading.group(2))
        current = None
        for line in text[heading.end() : end].splitlines():
            match = FIELD.match(line)
            if match:
                current = hazard.fields.setdefault(match.group(1), [])
                if match.group(2):
                    current.append(match.group(2))
            elif current is not None and line.strip() and not line.startswith("#"):
                current.append(line)
        hazards.setdefault(hazard.id, hazard)
    return hazards


def log_problems(text: str, hazards: dict[str, Hazard]) -> list[str]:
    """What is wrong with the log as a log: duplicate ids, missing fields, unmarked controls, wrong ratings."""
    problems = []
    ids = [match.group(1) for match in HEADING.finditer(text)]
    problems += [f"{id_}: the log holds this id more than once" for id_ in sorted({i for i in ids if ids.count(i) > 1})]
    for hazard in hazards.values():
        problems += [f"{hazard.id}: no **{name}** field" for name in REQUIRED if not hazard.fields.get(name)]
        if hazard.fields.get("Controls") and not hazard.controls:
            problems.append(f"{hazard.id}: **Controls** lists no control (one `- (software) ...` line each)")
        for control in hazard.controls:
            if control.kind is None:
                problems.append(
                    f"{hazard.id}: a control is marked neither (software) nor (procedural: ...): {control.text[:70]}"
                )
        ratings = {}
        for name in ("Initial risk", "Residual risk"):
            if not hazard.fields.get(name):
                continue
            risk = hazard.risk(name)
            if risk is None:
                problems.append(f"{hazard.id}: **{name}** needs 'severity N × likelihood N → risk N'")
                continue
            severity, likelihood, rating = risk
            expected = MATRIX[likelihood - 1][severity - 1]
            if rating != expected:
                problems.append(
                    f"{hazard.id}: **{name}** severity {severity} × likelihood {likelihood} is risk {expected} "
                    f"on the DCB0129 matrix, not {rating}"
                )
            ratings[name] = rating
        if ratings.get("Residual risk", 0) > ratings.get("Initial risk", 5):
            problems.append(f"{hazard.id}: the residual risk is higher than the initial risk")
    return problems


def _hazard_ids(decorators) -> tuple[set[str], list[str]]:
    """Ids named by `pytest.mark.hazard(...)` among decorators (or pytestmark items); errors for non-literals."""
    ids, errors = set(), []
    for node in decorators:
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "hazard"):
            continue
        if _name_of(func.value) != "mark":  # pytest.mark.hazard, or mark.hazard after `from pytest import mark`
            continue
        if not node.args:
            errors.append(f"line {node.lineno}: hazard mark without an id")
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                ids.add(arg.value)
            else:
                errors.append(f"line {node.lineno}: a hazard id must be a string literal")
    return ids, errors


def _name_of(node) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _pytestmark(body) -> list:
    """The mark expressions of a `pytestmark = ...` assignment in a module or class body."""
    marks = []
    for statement in body:
        if not isinstance(statement, ast.Assign):
            continue
        if any(isinstance(target, ast.Name) and target.id == "pytestmark" for target in statement.targets):
            value = statement.value
            marks += value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
    return marks


def collect_tags(tests_dir: Path, root: Path) -> tuple[dict[str, set[str]], set[str], list[str]]:
    """Every test function's node id -> the hazard ids it is tagged with (module, class and function marks).

    Returns (tagged tests, every test's node id, errors). Node ids are relative to `root`, without
    parameters, as pytest prints them."""
    tagged, every, errors = {}, set(), []
    for path in sorted(tests_dir.rglob("test_*.py")):
        relative = path.relative_to(root).as_posix()
        try:
            module = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        except SyntaxError as exc:
            errors.append(f"{relative}: cannot be parsed ({exc.msg}, line {exc.lineno})")
            continue
        module_ids, module_errors = _hazard_ids(_pytestmark(module.body))
        errors += [f"{relative} {error}" for error in module_errors]
        _collect(module.body, relative, module_ids, tagged, every, errors)
    return tagged, every, errors


def _collect(body, prefix: str, inherited: set[str], tagged, every, errors) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            ids, class_errors = _hazard_ids([*node.decorator_list, *_pytestmark(node.body)])
            errors += [f"{prefix}::{node.name} {error}" for error in class_errors]
            _collect(node.body, f"{prefix}::{node.name}", inherited | ids, tagged, every, errors)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            ids, function_errors = _hazard_ids(node.decorator_list)
            node_id = f"{prefix}::{node.name}"
            errors += [f"{node_id} {error}" for error in function_errors]
            every.add(node_id)
            if inherited | ids:
                tagged[node_id] = inherited | ids


def by_hazard(hazards: dict[str, Hazard], tagged: dict[str, set[str]]) -> dict[str, list[str]]:
    """Hazard id -> its tests, sorted (every hazard of the log, with or without tests)."""
    tests = {hazard_id: [] for hazard_id in hazards}
    for node_id, ids in sorted(tagged.items()):
        for hazard_id in ids & set(hazards):
            tests[hazard_id].append(node_id)
    return tests


def _risk_cell(hazard: Hazard, name: str) -> str:
    risk = hazard.risk(name)
    return f"{risk[0]} × {risk[1]} → **{risk[2]}**" if risk else "?"


def render_table(hazards: dict[str, Hazard], tagged: dict[str, set[str]]) -> str:
    """The safety case's generated part: each hazard's risk before and after its controls, then hazard -> tests."""
    tests = by_hazard(hazards, tagged)
    lines = [
        START,
        "<!-- Generated by `make safety-report` from hazard-log.md and the hazard marks in tests/;",
        "     `make check` fails when it is out of date. Do not edit by hand. -->",
        "",
        "| Hazard | Initial risk | Residual risk | Software controls proven | Procedural controls | Tagged tests |",
        "|---|---|---|---|---|---|",
    ]
    for hazard_id, hazard in hazards.items():
        software = [control for control in hazard.controls if control.software]
        proven = sum(1 for control in software if _proven(control, hazard_id, tagged))
        procedural = len(hazard.controls) - len(software)
        initial, residual = _risk_cell(hazard, "Initial risk"), _risk_cell(hazard, "Residual risk")
        lines.append(
            f"| {hazard_id} {hazard.title} | {initial} | {residual} | {proven} of {len(software)} | {procedural} "
            f"| {len(tests[hazard_id])} |"
        )
    lines += ["", "| Hazard | Tests proving its software controls |", "|---|---|"]
    for hazard_id, nodes in tests.items():
        if nodes:
            cell = "<br>".join(f"`{node}`" for node in nodes)
        elif hazards[hazard_id].has_software_control:
            cell = "**none yet: `make check` fails**"
        else:
            cell = "none needed (procedural controls only)"
        lines.append(f"| {hazard_id} | {cell} |")
    lines += ["", END]
    return "\n".join(lines)


def with_table(case_text: str, table: str) -> str | None:
    """The case with its table replaced; None when the markers are missing."""
    start, end = case_text.find(START), case_text.find(END)
    if start < 0 or end < start:
        return None
    return case_text[:start] + table + case_text[end + len(END) :]


def _proven(control: Control, hazard_id: str, tagged: dict[str, set[str]]) -> bool:
    """Names at least one test, and every test it names exists and is tagged with the hazard."""
    nodes = control.tests
    return bool(nodes) and all(hazard_id in tagged.get(node, set()) for node in nodes)


def _some(nodes: list[str], shown: int = 4) -> str:
    more = f" and {len(nodes) - shown} more" if len(nodes) > shown else ""
    return ", ".join(nodes[:shown]) + more


def _test_problems(hazard: Hazard, tests: list[str], tagged, every) -> list[str]:
    found = []
    if hazard.has_software_control and not tests:
        found.append(
            f'{hazard.id} "{hazard.title}": it has a (software) control but no test is tagged '
            f'@pytest.mark.hazard("{hazard.id}")'
        )
    named = {node for control in hazard.controls for node in control.tests}
    unnamed = [node for node in tests if node not in named]
    for number, control in enumerate(hazard.controls, start=1):
        for node in control.tests:
            if node not in every:
                found.append(f"{hazard.id} control {number}: names {node}, which is not a test in tests/")
            elif hazard.id not in tagged.get(node, set()):
                found.append(f'{hazard.id} control {number}: names {node}, which is not tagged hazard("{hazard.id}")')
        if control.software and not control.tests:
            hint = f"tagged {hazard.id}, named by no control: {_some(unnamed)}" if unnamed else "none tagged yet"
            found.append(f'{hazard.id} control {number} (software) "{control.summary}" names no test ({hint})')
    return found


def problems(hazards, log_text, tagged, every, case_text) -> list[str]:
    """Every way the log, the tests and the safety case disagree (empty: they agree)."""
    found = log_problems(log_text, hazards)
    tests = by_hazard(hazards, tagged)
    for hazard in hazards.values():
        found += _test_problems(hazard, tests[hazard.id], tagged, every)
    for node_id, ids in sorted(tagged.items()):
        for stray in sorted(ids - set(hazards)):
            found.append(f"{node_id}: tagged hazard({stray!r}), which is not a hazard in the log")
    updated = with_table(case_text, render_table(hazards, tagged))
    if updated is None:
        found.append(f"safety case: no {START} ... {END} markers for the hazard -> tests table")
    elif updated != case_text:
        found.append("safety case: the hazard -> tests table is out of date (run `make safety-report`)")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carerecord.hazards", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail when the log, the tests and the case disagree")
    mode.add_argument("--report", action="store_true", help="write the hazard -> tests table into the case")
    parser.add_argument("--log", type=Path, default=LOG)
    parser.add_argument("--case", type=Path, default=CASE)
    parser.add_argument("--tests", type=Path, default=TESTS)
    parser.add_argument("--root", type=Path, default=ROOT, help="node ids are relative to this folder")
    args = parser.parse_args(argv)

    log_text = args.log.read_text(encoding="utf-8")
    hazards = parse_log(log_text)
    tagged, every, errors = collect_tags(args.tests, args.root)
    case_text = args.case.read_text(encoding="utf-8") if args.case.exists() else ""
    if args.report:
        updated = with_table(case_text, render_table(hazards, tagged))
        if updated is None:
            print(f"{args.case}: add the markers {START} and {END} where the table goes", file=sys.stderr)
            return 1
        args.case.write_text(updated, encoding="utf-8")
        print(f"wrote the hazard -> tests table ({len(tagged)} tagged tests) into {args.case}")
        case_text = updated
    found = errors + problems(hazards, log_text, tagged, every, case_text)
    if found:
        print(f"Hazard log check failed ({args.log.name} against the tests' hazard marks):", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        print(
            'To fix: tag the tests that prove a control with @pytest.mark.hazard("H-NN"), name them on the control\'s '
            f"`Tests:` line in {args.log.name}, then run `make safety-report`.",
            file=sys.stderr,
        )
        return 1
    if args.check:
        software = sum(1 for hazard in hazards.values() for control in hazard.controls if control.software)
        print(
            f"hazard log: {len(hazards)} hazards, {software} software controls each proven by tagged tests, "
            f"{len(tagged)} tagged tests: all tied"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

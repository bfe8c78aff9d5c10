"""pytest plugin behind the reliability report (see __init__.py).

- `@pytest.mark.requirement("SV-2", ...)`: the test shows these requirements;
- the `evidence` fixture: `evidence("LD-1", "5 admitted, 96 refused in 9 ms")` records the
  number a test measured (and implies the marker); `evidence.gap("ID", why)` marks a
  requirement this machine does not meet, in numbers: the row reads GAP, loudly, not PASS;
- `--reliability-report DIR`: also write the table as reliability.json and reliability.md;
- `--require-every-requirement`: fail the run when an ID of RELIABILITY.md has no passing test
  (the README's test command and the report command set it: CI cannot pass with a gap).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import LONG

SPEC = Path(__file__).resolve().parents[3] / "shared" / "RELIABILITY.md"
_ID = re.compile(r"^- ([A-Z]{2}-\d+) (.*)$")
# Requirements of features that are not built yet, with the issue that builds them: the table
# says NOT BUILT in red, and a whole run does not fail on them. Once a test shows one, its
# entry must go (a whole run fails while a shown requirement is still listed here).
NOT_BUILT: dict[str, str] = {}


def requirement_ids() -> dict[str, str]:
    """ID -> the requirement's first line, in the order RELIABILITY.md gives them."""
    if not SPEC.is_file():
        raise pytest.UsageError(f"{SPEC} is missing: the reliability report needs it")
    ids = {}
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        match = _ID.match(line)
        if match:
            ids[match[1]] = match[2].strip()
    return ids


@dataclass
class Case:
    nodeid: str
    what: str
    passed: bool | None = None  # None: did not finish (skipped, or not run)
    numbers: dict[str, list[str]] = field(default_factory=dict)
    gaps: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    id: str
    tried: str
    number: str
    # PASS, GAP (passed its test, misses the requirement's number), FAIL, NOT RUN, NOT BUILT
    # (the feature is not built yet: NOT_BUILT)
    result: str


class Evidence:
    """Per-test recorder handed out by the `evidence` fixture."""

    def __init__(self, case: Case, known: dict[str, str]) -> None:
        self._case = case
        self._known = known

    def __call__(self, requirement: str, number: str) -> None:
        self._check(requirement)
        self._case.numbers.setdefault(requirement, []).append(number)

    def gap(self, requirement: str, why: str) -> None:
        """The test passed, but this machine misses the requirement: say by how much."""
        self._check(requirement)
        self._case.gaps[requirement] = why

    def _check(self, requirement: str) -> None:
        if requirement not in self._known:
            raise ValueError(f"{requirement!r} is not an ID of {SPEC.name}")


class ReliabilityPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ids = requirement_ids()
        self.cases: dict[str, tuple[list[str], Case]] = {}

    # -- collection: which test shows what ----------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids = [i for mark in item.iter_markers("requirement") for i in mark.args]
            unknown = sorted(set(ids) - set(self.ids))
            if unknown:
                raise pytest.UsageError(f"{item.nodeid}: unknown requirement {unknown}")
            if ids:
                self.cases[item.nodeid] = (ids, Case(item.nodeid, _what(item)))

    def case(self, item: pytest.Item) -> Case:
        if item.nodeid not in self.cases:  # evidence() in a test without the marker
            self.cases[item.nodeid] = ([], Case(item.nodeid, _what(item)))
        return self.cases[item.nodeid][1]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if item.nodeid in self.cases:
            case = self.cases[item.nodeid][1]
            if report.failed:
                case.passed = False
            elif report.when == "call" and case.passed is None:
                case.passed = report.passed
        return report

    # -- the table ------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        shown: dict[str, list[Case]] = {i: [] for i in self.ids}
        for ids, case in self.cases.values():
            for i in {*ids, *case.numbers, *case.gaps}:
                shown[i].append(case)
        rows = []
        for i, cases in shown.items():
            ran = [c for c in cases if c.passed is not None]
            if not ran:
                built = i not in NOT_BUILT
                rows.append(
                    Row(i, self.ids[i], NOT_BUILT.get(i, ""), "NOT RUN" if built else "NOT BUILT")
                )
                continue
            passed = sum(c.passed is True for c in ran)
            tried = "; ".join(dict.fromkeys(c.what for c in ran))
            numbers = [n for c in ran for n in c.numbers.get(i, [])]
            gaps = [c.gaps[i] for c in ran if i in c.gaps]
            number = "; ".join([*numbers, *gaps, f"{passed}/{len(ran)} test cases passed"])
            result = "FAIL" if passed < len(ran) else "GAP" if gaps else "PASS"
            rows.append(Row(i, tried, number, result))
        return rows

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.cases:
            return
        rows = self.rows()
        write = terminalreporter.write_line
        terminalreporter.section(f"reliability report ({'long' if LONG else 'quick'} forms)")
        width = max(len(r.tried) for r in rows)
        width = min(width, 70)
        for r in rows:
            write(f"{r.id:<5} {r.result:<9} {_clip(r.tried, width):<{width}}  {r.number}")
        shown = sum(r.result == "PASS" for r in rows)
        write(f"{shown} of {len(rows)} requirements shown by a passing test")
        known = [r.id for r in rows if r.result == "GAP"]
        if known:
            write(
                f"KNOWN GAPS (measured, not met here): {', '.join(known)}", yellow=True, bold=True
            )
        unbuilt = [f"{r.id} ({NOT_BUILT[r.id]})" for r in rows if r.result == "NOT BUILT"]
        if unbuilt:
            write(f"NOT BUILT YET: {'; '.join(unbuilt)}", red=True, bold=True)
        stale = _stale_not_built(rows)
        if stale:
            write(f"SHOWN BUT STILL IN NOT_BUILT (remove them): {', '.join(stale)}", red=True)
        missing = [r.id for r in rows if r.result in ("FAIL", "NOT RUN")]
        if missing:
            write(f"NOT SHOWN: {', '.join(missing)}", red=True, bold=True)
        out = self.config.getoption("reliability_report")
        if out:
            self.write_files(Path(out), rows)
            write(f"written: {Path(out) / 'reliability.md'} and reliability.json")

    def write_files(self, out: Path, rows: list[Row]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        form = "long" if LONG else "quick"
        data = {"form": form, "rows": [r.__dict__ for r in rows]}
        (out / "reliability.json").write_text(json.dumps(data, indent=2) + "\n")
        lines = [
            f"Reliability report ({form} forms)",
            "",
            "| ID | result | what was tried | number |",
            "|---|---|---|---|",
            *(f"| {r.id} | {r.result} | {r.tried} | {r.number} |" for r in rows),
        ]
        (out / "reliability.md").write_text("\n".join(lines) + "\n")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.config.getoption("require_every_requirement"):
            return
        rows = self.rows()
        missing = [r.id for r in rows if r.result in ("FAIL", "NOT RUN")]
        if (missing or _stale_not_built(rows)) and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _stale_not_built(rows: list[Row]) -> list[str]:
    return [r.id for r in rows if r.id in NOT_BUILT and r.result in ("PASS", "GAP")]


def _what(item: pytest.Item) -> str:
    """The test's docstring's first line, else its name made readable."""
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    if doc and doc.strip():
        text = doc.strip().splitlines()[0].rstrip(".")
    else:
        name = getattr(item, "originalname", None) or item.name
        text = name.removeprefix("test_").replace("_", " ")
    return text


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reliability")
    group.addoption("--reliability-report", metavar="DIR", help="write reliability.{json,md}")
    group.addoption(
        "--require-every-requirement",
        action="store_true",
        help="fail unless every ID of RELIABILITY.md is shown by a passing test",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the test shows these RELIABILITY.md requirements"
    )
    config.pluginmanager.register(ReliabilityPlugin(config), "reliability")


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Record the number a test measured for a requirement: evidence("FT-2", "freed in 0.4 s")."""
    plugin: ReliabilityPlugin = request.config.pluginmanager.get_plugin("reliability")
    return Evidence(plugin.case(request.node), plugin.ids)

"""ComparisonReport -> rich table (terminal), markdown (PR comment), JUnit XML (CI test report), JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.compare.engine import ComparisonReport, MetricComparison, PairComparison
from harness.console import esc, plain

FORMATS = ("table", "markdown", "junit", "json")
SKIPPED = ("not_comparable", "untested", "missing")
VERDICT_STYLE = {
    "ok": "green",
    "improved": "bold green",
    "regression": "bold red",
    "failed": "bold red",
    "not_comparable": "yellow",
    "untested": "yellow",
    "missing": "dim",
    "new": "cyan",
}
VERDICT_MARK = {
    "ok": "✅ ok",
    "improved": "🟢 improved",
    "regression": "❌ regression",
    "failed": "❌ failed",
    "not_comparable": "⚠️ not comparable",
    "untested": "⚠️ untested",
    "missing": "➖ missing",
    "new": "🆕 new",
}


def summary_line(report: ComparisonReport) -> str:
    counts = report.counts()
    parts = [f"{n} {verdict.replace('_', ' ')}" for verdict, n in sorted(counts.items())]
    status = "FAIL" if report.exit_code else "PASS"
    extra = f"; {len(report.problems)} policy problem(s)" if report.problems else ""
    return f"{status}: {len(report.pairs)} pair(s) compared ({', '.join(parts) or 'none'}){extra}."


def _num(x: float | None, fmt: str = ".4f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _signed(x: float | None) -> str:
    return _num(x, "+.4f")


def _ci(m: MetricComparison | None) -> str:
    if m is None or m.ci_low is None or m.ci_high is None:
        return "—"
    return f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]"


def _short_test(m: MetricComparison) -> str:
    if m.test.startswith("McNemar"):
        return "McNemar"
    if m.test.startswith("paired bootstrap"):
        return "bootstrap"
    return "unpaired" if m.test.startswith("CI overlap") else "no test"


def _p(m: MetricComparison | None) -> str:
    if m is None:
        return "—"
    if m.p_value is None:
        return "no test" if m.test == "none" else ("CIs disjoint" if m.significant else "CIs overlap")
    return f"{m.p_value:.3g} {_short_test(m)}"


def _p_adjusted(m: MetricComparison | None) -> str:
    return "—" if m is None or m.p_adjusted is None else f"{m.p_adjusted:.3g}"


def _latency(pair: PairComparison) -> str:
    lat = pair.latency
    if lat is None or lat.status == "unavailable":
        return "— (contended)" if lat is not None and "contended" in lat.note else "—"
    if lat.status == "not_comparable":
        return "not comparable (different hardware)"
    return (
        f"{lat.baseline_ms:.2f}→{lat.candidate_ms:.2f} ms x{lat.ratio:.2f} ({lat.status.replace('_', ' ')})"
    )


def gate_names(report: ComparisonReport) -> list[str]:
    """The gated metric of each task, in order (--metric, else each task's main metric)."""
    return list(dict.fromkeys(g.metric for p in report.pairs if (g := p.gate) is not None))


def _rows(report: ComparisonReport, with_task: bool = True) -> list[dict[str, str]]:
    gates = gate_names(report)
    one_gate = gates[0] if len(gates) == 1 else None
    at = report.policy.latency_at
    rows = []
    for pair in report.pairs:
        gate = pair.gate
        second = next((m for m in pair.metrics[1:2]), None)
        row = {"Task": pair.task} if with_task else {}
        row |= {"Model": pair.model, "Protocol": pair.protocol}
        if one_gate is None:
            row["Gate"] = gate.metric if gate else "—"
        row |= {
            f"{one_gate or 'gate'} base→cand": f"{_num(gate.baseline)}→{_num(gate.candidate)}" if gate else "—",
            "Δ [95% CI]": f"{_signed(gate.diff)} {_ci(gate)}" if gate else "—",
            "p": _p(gate),
        }
        if report.policy.correction == "holm":
            row["p Holm"] = _p_adjusted(gate)
        row["next metric Δ (p)"] = f"{second.metric} {_signed(second.diff)} ({_p(second)})" if second else "—"
        row[f"{at} latency"] = _latency(pair)
        row["verdict"] = pair.verdict.replace("_", " ")
        rows.append(row)
    return rows


def _latency_note_worth_showing(pair: PairComparison) -> bool:
    """Every latency note except the plain "no timing" one (contended or withheld timings say why)."""
    lat = pair.latency
    return lat is not None and (lat.status != "unavailable" or lat.note.startswith("Latency not compared"))


def _details(report: ComparisonReport) -> list[str]:
    lines = [*report.problems, *report.notes]
    for pair in report.pairs:
        extra = list(pair.reasons) + list(pair.notes)
        if pair.latency is not None and pair.latency.status != "regression" and _latency_note_worth_showing(pair):
            extra.append(pair.latency.note)
        lines.extend(f"{pair.name}: {text}" for text in extra)
    return lines


def render_table(report: ComparisonReport, console: Console) -> None:
    console.print(
        f"[bold]Baseline[/]  {esc(report.baseline)}\n[bold]Candidate[/] {esc(report.candidate)}",
        highlight=False,
    )
    p = report.policy
    limit = f"x{p.max_latency_ratio:g}" if p.max_latency_ratio else "none (latency reported only)"
    console.print(
        f"Policy: gate {esc(_gate_text(report))}, alpha {p.alpha:g}, max drop {p.max_drop:g}, latency limit {limit}\n"
        f"Multiple-testing correction: {esc(report.correction_text)}; significance is decided on "
        + ("the Holm-adjusted p (column p Holm)" if p.correction == "holm" else "each raw p")
    )
    rows = _rows(report, with_task=False)
    for task in dict.fromkeys(pair.task for pair in report.pairs):
        table = Table(title=esc(task), title_justify="left")
        for col in rows[0]:
            table.add_column(esc(col), overflow="fold")
        for row, pair in zip(rows, report.pairs, strict=True):
            if pair.task == task:
                verdict = f"[{VERDICT_STYLE[pair.verdict]}]{row['verdict']}[/]"
                cells = [*(esc(v) for v in list(row.values())[:-1]), verdict]
                table.add_row(*cells)
        console.print(table)
    for line in _details(report):
        console.print(f"• {plain(line)}", markup=False, highlight=False)
    style = "bold red" if report.exit_code else "bold green"
    console.print(f"[{style}]{esc(summary_line(report))}[/]", highlight=False)


def _gate_text(report: ComparisonReport) -> str:
    if report.policy.metric:
        return report.policy.metric
    gates = gate_names(report)
    return (", ".join(gates) or "the task's main metric") + " (each task's main metric)"


def _md_cell(text: str) -> str:
    """A table cell or list item: a name's "|" would split the row, and its "<", ">", "&" would be HTML where
    the report is rendered (a CI job summary shows an <img> tag in a model name as an image)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: ComparisonReport) -> str:
    p = report.policy
    out = [
        f"### harness compare: {'❌' if report.exit_code else '✅'} {_md_cell(summary_line(report))}",
        "",
        f"Baseline `{report.baseline}` vs candidate `{report.candidate}`. Gate: **{_gate_text(report)}** "
        f"(alpha {p.alpha:g}, max drop {p.max_drop:g}); paired tests on per-example predictions. "
        f"Multiple-testing correction: {report.correction_text}"
        + ("; significance is decided on the Holm-adjusted p (column p Holm)." if p.correction == "holm" else "."),
        "",
    ]
    rows = _rows(report)
    if rows:
        for row, pair in zip(rows, report.pairs, strict=True):
            row["verdict"] = VERDICT_MARK[pair.verdict]
        cols = list(rows[0])
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "|".join("---" for _ in cols) + "|")
        out.extend("| " + " | ".join(_md_cell(row[c]) for c in cols) + " |" for row in rows)
        out.append("")
    details = _details(report)
    if details:
        out.append("<details><summary>Details</summary>\n")
        out.extend(f"- {_md_cell(line)}" for line in details)
        out.append("\n</details>")
    return "\n".join(out) + "\n"


def render_junit(report: ComparisonReport) -> str:
    """One testcase per pair; regressions and failures are <failure>, untestable pairs <skipped>."""
    suites = ET.Element("testsuites", name="harness compare")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="harness compare",
        tests=str(len(report.pairs) + len(report.problems)),
        failures=str(len(report.failures) + len(report.problems)),
        skipped=str(sum(p.verdict in SKIPPED and p not in report.failures for p in report.pairs)),
        errors="0",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("alpha", f"{report.policy.alpha:g}"),
        ("correction", report.policy.correction),
        ("gate_tests", str(report.gate_tests)),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for pair in report.pairs:
        case = ET.SubElement(suite, "testcase", classname=f"{pair.task}.{pair.protocol}", name=pair.model)
        message = pair.reasons[0] if pair.reasons else pair.verdict
        if pair in report.failures:
            ET.SubElement(case, "failure", message=message, type=pair.verdict).text = "\n".join(pair.reasons)
        elif pair.verdict in SKIPPED:
            ET.SubElement(case, "skipped", message=message)
        latency = [pair.latency.note] if pair.latency and _latency_note_worth_showing(pair) else []
        out = [*pair.notes, *latency]
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)
    for i, problem in enumerate(report.problems):
        case = ET.SubElement(suite, "testcase", classname="policy", name=f"required-{i + 1}")
        ET.SubElement(case, "failure", message=problem, type="required_missing")
    ET.indent(suites)
    text = ET.tostring(suites, encoding="unicode")
    # Characters XML 1.0 forbids (a control character in a name of a store written elsewhere): shown as \x1b
    # etc., so the report stays well-formed for the CI reading it.
    text = _XML_FORBIDDEN.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


_XML_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def report_as_dict(report: ComparisonReport) -> dict[str, Any]:
    def clean(obj: Any) -> Any:
        if isinstance(obj, float) and math.isnan(obj):
            return None
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return obj

    return clean(
        {
            "baseline": report.baseline,
            "candidate": report.candidate,
            "policy": dataclasses.asdict(report.policy),
            "passed": report.exit_code == 0,
            "summary": summary_line(report),
            # p_value of each metric is its raw p; a gate's p_adjusted is after this correction (null: none)
            "correction": {
                "method": report.policy.correction,
                "gate_tests": report.gate_tests,
                "description": report.correction_text,
            },
            "problems": list(report.problems),
            "notes": list(report.notes),
            "pairs": [dataclasses.asdict(p) for p in report.pairs],
        }
    )


def render_json(report: ComparisonReport) -> str:
    return json.dumps(report_as_dict(report), indent=2) + "\n"

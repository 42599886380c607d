"""report.json's ``executor`` ("Where it ran"): typed, round-tripped, and drawn in report.md and report.html."""

from __future__ import annotations

import pytest
from tests.helpers.report_records import sample_report

from edgekit.errors import ReportError
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown
from edgekit.report.model import Report
from edgekit.report.sections import Executor


@pytest.mark.parametrize("executor, sentence", [
    (Executor("ray", "10.0.0.5:6379", 2, 8), "Ran on a Ray cluster at 10.0.0.5:6379 (2 nodes, 8 workers)."),
    (Executor("local", "127.0.0.1:61234", 1, 2), "Ran on an embedded Ray on this machine at 127.0.0.1:61234 (1 node, 2 workers)."),
    (Executor("inprocess", "", 1, 3), "Ran in this process (1 node, 3 workers)."),
])
def test_where_it_ran_in_both_pages(executor: Executor, sentence: str) -> None:
    report = sample_report(executor=executor)
    md = render_markdown(report)
    assert f"## Where it ran\n\n{sentence}\n" in md
    section = render_html(report).split('<section id="executor">')[1].split("</section>")[0]
    assert section == f"<h2>Where it ran</h2><p>{sentence}</p>"


def test_executor_round_trips_and_a_report_without_one_has_no_section() -> None:
    data = sample_report(executor=Executor("ray", "head:6379", 2, 4)).to_dict()
    assert data["executor"] == {"kind": "ray", "address": "head:6379", "nodes": 2, "workers": 4}
    assert Report.from_dict(data).to_dict() == data
    old = {k: v for k, v in data.items() if k != "executor"}  # a report.json without the section
    assert "Where it ran" not in render_markdown(old) and 'id="executor"' not in render_html(old)


def test_a_bad_executor_field_names_it() -> None:
    data = sample_report().to_dict() | {"executor": {"kind": "ray", "nodes": "two"}}
    with pytest.raises(ReportError, match="executor.nodes"):
        Report.from_dict(data)

"""Self-contained HTML reports of eval runs: metric tables, comparisons, charts, published
ProcessBench numbers and a browsable item list, in one file that opens offline."""

from criticlab.report.html import render_report, write_report
from criticlab.report.published import PUBLISHED_PROCESSBENCH
from criticlab.report.run import Run, load_run

__all__ = ["PUBLISHED_PROCESSBENCH", "Run", "load_run", "render_report", "write_report"]

"""Self-contained HTML reports of ``criticlab eval``, ``refine`` and ``select`` runs: metric
tables, comparisons, charts, published ProcessBench numbers, the closed-loop transition table
and browsable items, trajectories and selections, in one file that opens offline."""

from criticlab.report.html import render_report, write_report
from criticlab.report.loop_runs import RefineRun, SelectRun
from criticlab.report.published import PUBLISHED_PROCESSBENCH
from criticlab.report.run import AnyRun, Run, load_run

__all__ = ["PUBLISHED_PROCESSBENCH", "AnyRun", "RefineRun", "Run", "SelectRun", "load_run",
           "render_report", "write_report"]

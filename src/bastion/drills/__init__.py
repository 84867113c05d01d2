"""Breach drills: scripted attack narratives run step by step against the target, judged by detection.

Each step records what was done, how it ended (blocked, rate-limited, succeeded, skipped), whether an alert
fired on the model's `alerts:` channels and whether the audit trail recorded it; a playbook checklist says
what responders would have. `bastion drill breach` prints it; `checks/drills.py` runs it in a scan.
"""

from __future__ import annotations

from bastion.drills.narratives import Narrative, load_narratives, select_narratives
from bastion.drills.runner import run_breach_drills, run_narrative
from bastion.drills.timeline import DrillRun, PlaybookAnswer, StepRecord

__all__ = ["DrillRun", "Narrative", "PlaybookAnswer", "StepRecord", "load_narratives", "run_breach_drills",
           "run_narrative", "select_narratives"]

"""Quality (band 2): rules compiled to one scanning query; results are data, not verdicts."""

from headwater.quality.rules import CheckResult, Known, evaluate, written

__all__ = ["CheckResult", "Known", "evaluate", "written"]

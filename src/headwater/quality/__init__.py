"""Quality (band 2): rules compiled to one scanning query; results are data, not verdicts."""

from headwater.quality.rules import CheckResult, answerable, evaluate

__all__ = ["CheckResult", "answerable", "evaluate"]

"""The result every check returns: :class:`CheckResult`, a bounded message with the numbers."""
from dataclasses import dataclass, field
from typing import List

__all__ = ["CheckResult", "MAX_LINES"]

MAX_LINES = 8  # detail lines per check; tables are cut to this many rows too


@dataclass
class CheckResult:
    """``name`` (numeric, layers, inputs, untouched, speed, ...), whether it passed, a one-line
    ``summary``, bounded ``details`` and the ``figures`` it measured (for rows and baselines)."""

    name: str
    passed: bool
    summary: str
    details: List[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def message(self):
        lines = ["[{}] {}".format(self.name, self.summary)]
        lines += ["    " + d for d in self.details[:MAX_LINES]]
        if len(self.details) > MAX_LINES:
            lines.append("    ... {} more lines".format(len(self.details) - MAX_LINES))
        return "\n".join(lines)

"""The built-in matrix rows: our converters, our NNabla-compatible modifiers (issue #13) and
NNabla 1.39's built-ins as peers (the only place that runs them)."""
from .compat import COMPAT
from .ours import OURS
from .peers import PEERS

__all__ = ["BUILTIN", "OURS", "COMPAT", "PEERS"]

BUILTIN = OURS + COMPAT + PEERS

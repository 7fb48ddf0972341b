"""The built-in matrix rows: our converters and NNabla 1.39's built-ins as peers (the only place that runs them)."""
from .ours import OURS
from .peers import PEERS

__all__ = ["BUILTIN", "OURS", "PEERS"]

BUILTIN = OURS + PEERS

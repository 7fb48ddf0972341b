"""Graph converters for NNabla networks.

``import converters as GC`` gives both seed APIs:

- Modifier API (seed 000): ``GC.GraphConverter([GC.BatchNormalizationFoldingModifier()]).convert(y)``
- Converter API (seed 003): ``GC.BatchNormalizationFoldedConverter(name="bn").convert(y, [x])``

and every public name of NNabla 1.39's ``nnabla.experimental.graph_converters``, with the same
arguments (user ``FunctionModifier`` subclasses included).

Layers: ``graph_view`` (read-only graph) -> ``rewrite`` (engine + pass base) -> one module per
family of passes (``bn_fold``, ``layout``, ``fixed_point``, ...) -> the two facades.
"""
from .converter_api import *  # noqa: F401,F403
from .converter_api import __all__ as _converter_all
from .graph_view import GraphView, histogram_diff
from .modifier_api import *  # noqa: F401,F403
from .modifier_api import __all__ as _modifier_all
from .rewrite import ConversionWarning, GraphPass, Rewrite, run_passes

__all__ = ["GraphView", "histogram_diff", "GraphPass", "Rewrite", "run_passes", "ConversionWarning"]
__all__ += _modifier_all + _converter_all
from .quant_api import *  # noqa: F401,F403,E402  (fixed point, statistics, QDQ, low rank)
from .quant_api import __all__ as _quant_all  # noqa: E402
__all__ += _quant_all
from .compat_api import *  # noqa: F401,F403,E402  (NNabla 1.39's other modifier names)
from .compat_api import __all__ as _compat_all  # noqa: E402
__all__ += _compat_all

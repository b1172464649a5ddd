"""Studies: scenario kinds beyond a plain comparison. Each module registers itself on import."""

from asicsim.studies import (context_scaling, open_closed, scale_out, serving_curve, speculative,  # noqa: F401
                             sweep)

"""asicsim: a cycle-approximate discrete-event simulator of transformer-inference ASICs.

The flow is one line of plain values (see docs/architecture.md):

    ModelSpec ──► ModelGraph ──┐
                               ├─► compile ──► Program ──► engine ──► Trace ──► metrics
    System (hardware) ─────────┘
"""

__version__ = "0.1.0"

_API = ("predict", "run", "compare", "chip", "system", "collective_ns", "Result")


def __getattr__(name: str):
    """``import asicsim as asim; asim.predict(...)``: the API, imported on first use."""
    if name in _API:
        from asicsim import api

        return getattr(api, name)
    if name in ("Workload", "Adapters"):
        from asicsim import compile as _compile

        return getattr(_compile, name)
    if name == "load_model":
        from asicsim.model import load_model

        return load_model
    raise AttributeError(f"module 'asicsim' has no attribute {name!r}")


__all__ = [*_API, "Workload", "Adapters", "load_model", "__version__"]

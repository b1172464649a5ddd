"""asicsim: a cycle-approximate discrete-event simulator of transformer-inference ASICs.

The flow is one line of plain values (see docs/architecture.md):

    ModelSpec ──► ModelGraph ──┐
                               ├─► compile ──► Program ──► engine ──► Trace ──► metrics
    System (hardware) ─────────┘
"""

__version__ = "0.1.0"

"""Models: Hugging Face configs → typed layer specs → op graphs. Knows nothing about chips."""

from asicsim.model.graph import ModelGraph, build_graph
from asicsim.model.hf import load_model
from asicsim.model.layers import Attention, Block, DenseMLP, ModelSpec
from asicsim.model.ops import Numerics, Op, OpKind, StepShape

__all__ = ["Attention", "Block", "DenseMLP", "ModelGraph", "ModelSpec", "Numerics", "Op", "OpKind",
           "StepShape", "build_graph", "load_model"]

"""Models: Hugging Face configs → typed layer specs → op graphs. Knows nothing about chips."""

from asicsim.model.catalog import catalog
from asicsim.model.graph import ModelGraph, build_graph
from asicsim.model.hf import load_model
from asicsim.model.layers import (MLA, RGLRU, Attention, Block, DenseMLP, GatedDeltaNet, Mamba, Mamba2,
                                  ModelSpec, MoE, ShortConv, UniformRouting, ZipfRouting)
from asicsim.model.ops import Numerics, Op, OpKind, StepShape

__all__ = ["Attention", "Block", "DenseMLP", "GatedDeltaNet", "MLA", "Mamba", "Mamba2", "ModelGraph",
           "ModelSpec", "MoE", "Numerics", "Op", "OpKind", "RGLRU", "ShortConv", "StepShape",
           "UniformRouting", "ZipfRouting", "build_graph", "catalog", "load_model"]

"""Hardware: chip and system descriptions (YAML → frozen specs → networkx topology)."""

from asicsim.hardware.spec import (ChipSpec, DMASpec, HBMSpec, LinkSpec, Mapping, MatmulSpec, ROMSpec,
                                   SRAMSpec, VectorSpec)
from asicsim.hardware.system import System, SystemSpec, build_system, load_chip, load_system, preset_names

__all__ = ["ChipSpec", "DMASpec", "HBMSpec", "LinkSpec", "Mapping", "MatmulSpec", "ROMSpec", "SRAMSpec",
           "System", "SystemSpec", "VectorSpec", "build_system", "load_chip", "load_system", "preset_names"]

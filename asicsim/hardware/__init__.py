"""Hardware: chip and system descriptions (YAML → frozen specs → networkx topology)."""

from asicsim.hardware.spec import (ChipSpec, Collective, DMASpec, HBMSpec, LinkSpec, Mapping, MatmulSpec,
                                   NetworkSpec, ROMSpec, SRAMSpec, Topology, VectorSpec)
from asicsim.hardware.runtime import BARE, RuntimeSpec, load_runtime, runtime_names
from asicsim.hardware.system import (System, SystemSpec, build_system, chip_preset_names, load_chip, load_system,
                                     preset_names, system_preset_names, with_chips)

__all__ = ["BARE", "RuntimeSpec", "load_runtime", "runtime_names", "ChipSpec", "Collective", "DMASpec", "HBMSpec", "LinkSpec", "Mapping", "MatmulSpec", "NetworkSpec",
           "ROMSpec", "SRAMSpec", "System", "SystemSpec", "Topology", "VectorSpec", "build_system", "load_chip",
           "load_system", "preset_names", "chip_preset_names", "system_preset_names", "with_chips"]

"""Numeric formats: storage width and the compute class a matmul array runs them at."""

from __future__ import annotations

from enum import Enum


class DType(str, Enum):
    """A number format named as users type it (``--dtype fp8``)."""

    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"

    @property
    def bits(self) -> int:
        return _BITS[self]

    @property
    def bytes(self) -> float:
        return _BITS[self] / 8


_BITS = {DType.BF16: 16, DType.FP16: 16, DType.FP8: 8, DType.INT8: 8, DType.INT4: 4}


def parse_dtype(name: str, source: str = "--dtype", field: str | None = None) -> DType:
    """Return the DType called ``name`` or raise an InputError listing the valid names."""
    from asicsim.errors import InputError

    try:
        return DType(str(name).lower())
    except ValueError:
        valid = ", ".join(d.value for d in DType)
        raise InputError(source, field, f"unknown dtype '{name}'; expected one of {valid}") from None

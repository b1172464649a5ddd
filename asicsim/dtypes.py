"""Numeric formats: storage width and the compute class a matmul array runs them at.

Most formats are both: int8 is W8A8 (int8 weights and activations, products at the array's int8
rate). ``w8a16`` is weight-only int8: weights stored as int8 (1 byte) and widened to bf16 on the
vector lanes inside the matmul, products at the bf16 rate (:attr:`DType.compute`). int4 is weight
only too, but keeps its own class so that arrays with an int4 rate can use it.
"""

from __future__ import annotations

from enum import Enum


class DType(str, Enum):
    """A number format named as users type it (``--dtype fp8``)."""

    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"
    W8A16 = "w8a16"

    @property
    def bits(self) -> int:
        return _BITS[self]

    @property
    def bytes(self) -> float:
        return _BITS[self] / 8

    @property
    def compute(self) -> DType:
        """The format the matmul arrays multiply in: bf16 for weight-only int8, else itself."""
        return DType.BF16 if self is DType.W8A16 else self

    @property
    def weight_only(self) -> bool:
        """Only the weights are stored narrow; activations stay 16-bit (int4, w8a16)."""
        return self in (DType.INT4, DType.W8A16)


_BITS = {DType.BF16: 16, DType.FP16: 16, DType.FP8: 8, DType.INT8: 8, DType.INT4: 4, DType.W8A16: 8}

# Formats a KV cache may be kept in (weight-only formats describe weights, not cached activations;
# an int4 cache's group scales are not modelled).
KV_DTYPES = (DType.BF16, DType.FP16, DType.FP8, DType.INT8)


def default_kv_dtype(dtype: DType) -> DType:
    """The KV cache's format when none is asked for: the run's own for bf16, fp16, fp8 and int8
    (W8A8), bf16 for the weight-only formats (int4, w8a16), whose activations stay bf16."""
    return DType.BF16 if dtype.weight_only else dtype


def formats_text(dtype: DType | str, kv: DType | str | None = None) -> str:
    """The run's number format as titles print it: the dtype, and the KV cache's format too
    where it is not the dtype's default (``w8a16, KV int8``). ``kv`` None: the default."""
    dtype = DType(dtype)
    if kv is None or DType(kv) is default_kv_dtype(dtype):
        return dtype.value
    return f"{dtype.value}, KV {DType(kv).value}"


def kv_dtype_problem(kv: DType) -> str | None:
    """Why ``kv`` cannot be a KV cache's format (None if it can)."""
    if kv in KV_DTYPES:
        return None
    valid = ", ".join(d.value for d in KV_DTYPES)
    return (f"{kv.value} is a weight-only format (the cache holds activations; an int4 cache's group scales "
            f"are not modelled); a KV cache is one of {valid}")


def parse_dtype(name: str, source: str = "--dtype", field: str | None = None, kv: bool = False) -> DType:
    """Return the DType called ``name`` or raise an InputError listing the valid names (only the
    KV formats where ``kv``; a weight-only name is left to the workload's check, which says why)."""
    from asicsim.errors import InputError

    try:
        return DType(str(name).lower())
    except ValueError:
        valid = ", ".join(d.value for d in (KV_DTYPES if kv else DType))
        raise InputError(source, field, f"unknown {'KV format' if kv else 'dtype'} '{name}'; expected one of "
                                        f"{valid}") from None

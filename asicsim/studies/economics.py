"""What a million generated tokens cost on a chip: capex amortised over its useful life, plus energy.

Pure arithmetic, no simulation. Over one hour of wall time a deployment pays ``capex / life`` for
its chips whether or not it serves, draws ``power_w`` while it serves (a fraction ``utilisation``
of the time; idle power is not charged) and generates ``tokens_per_s`` while it serves, so

    $/Mtok = (capex_usd / (life_months × HOURS_PER_MONTH) + power_kw × usd_per_kwh × utilisation)
             / (tokens_per_s × 3600 × utilisation / 1e6)

The useful life is where open and closed chips differ. A programmable chip serves the next model
when this one is superseded, so its capex is spread over its whole service life. A hardwired chip
holds one model: when that model is superseded after ``model_lifetime_months`` the chip must be
re-made for its successor, so its capex is spread over the shorter of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOURS_PER_MONTH = 8760.0 / 12  # 730: a year of hours over twelve months


@dataclass(frozen=True)
class Cost:
    """Dollars per million generated tokens, split into chip capex and electricity."""

    capex_usd_per_mtok: float
    energy_usd_per_mtok: float

    @property
    def usd_per_mtok(self) -> float:
        """The total: capex plus energy."""
        return self.capex_usd_per_mtok + self.energy_usd_per_mtok


def amortisation_months(hardwired: bool, service_life_months: float, model_lifetime_months: float) -> float:
    """Months a chip's price is spread over: the service life, cut short for a hardwired chip when
    its model is superseded (it cannot serve the successor)."""
    return min(service_life_months, model_lifetime_months) if hardwired else service_life_months


def cost_per_mtok(capex_usd: float, amortise_months: float, power_w: float, tokens_per_s: float,
                  usd_per_kwh: float, utilisation: float) -> Cost:
    """The cost of a million tokens for chips worth ``capex_usd`` that draw ``power_w`` and generate
    ``tokens_per_s`` while serving, busy a fraction ``utilisation`` of the time."""
    if tokens_per_s <= 0 or utilisation <= 0 or amortise_months <= 0:
        raise ValueError("tokens_per_s, utilisation and amortise_months must be positive")
    mtok_per_hour = tokens_per_s * 3600.0 * utilisation / 1e6
    capex_per_hour = capex_usd / (amortise_months * HOURS_PER_MONTH)
    energy_per_hour = power_w / 1000.0 * usd_per_kwh * utilisation
    return Cost(capex_per_hour / mtok_per_hour, energy_per_hour / mtok_per_hour)


def lifetime_curve(hardwired: bool, capex_usd: float, power_w: float, tokens_per_s: float,
                   usd_per_kwh: float, utilisation: float, service_life_months: float,
                   lifetimes_months: list[float]) -> list[float]:
    """$/Mtok for each model lifetime in ``lifetimes_months``: flat for a programmable chip, rising
    as the lifetime shortens for a hardwired one."""
    return [cost_per_mtok(capex_usd, amortisation_months(hardwired, service_life_months, months), power_w,
                          tokens_per_s, usd_per_kwh, utilisation).usd_per_mtok
            for months in lifetimes_months]


# --- What a chip costs to build (docs/area.md, "Silicon cost"; sources A5, A6, A12, A13) -------------

WAFER_DIAMETER_MM = 300.0


def dies_per_wafer(die_mm2: float, wafer_diameter_mm: float = WAFER_DIAMETER_MM) -> int:
    """Whole dies of ``die_mm2`` on a round wafer: the wafer's area over the die's, less the dies
    the edge cuts, ``π d² / 4A − π d / √(2A)`` (the usual gross-die estimate). 0 when none fits."""
    if die_mm2 <= 0:
        raise ValueError("die_mm2 must be positive")
    d = wafer_diameter_mm
    return max(0, math.floor(math.pi * d * d / (4 * die_mm2) - math.pi * d / math.sqrt(2 * die_mm2)))


def die_yield(die_mm2: float, defects_per_cm2: float, model: str = "murphy", alpha: float = 3.0) -> float:
    """The fraction of dies with no killing defect: Murphy's ``((1 − e^−AD) / AD)²`` or the
    negative binomial ``(1 + AD/α)^−α`` (defects clustered, ``alpha`` the clustering), with A the
    die area in cm² and D the defect density."""
    ad = die_mm2 / 100.0 * defects_per_cm2
    if ad <= 0:
        return 1.0
    if model == "murphy":
        return (-math.expm1(-ad) / ad) ** 2
    if model == "negative_binomial":
        return (1 + ad / alpha) ** -alpha
    raise ValueError(f"unknown yield model '{model}'; expected murphy or negative_binomial")


@dataclass(frozen=True)
class BuildCost:
    """What one chip costs to make: ``dies`` good dies of ``die_mm2`` each, their package and the
    HBM beside them. A die too large for the wafer has ``dies_per_wafer`` 0 and no cost."""

    die_mm2: float
    dies: int
    dies_per_wafer: int
    yield_fraction: float
    die_usd: float
    packaging_usd: float
    hbm_usd: float

    @property
    def usd(self) -> float:
        """The whole chip: its dies, package and memory."""
        return self.dies * self.die_usd + self.packaging_usd + self.hbm_usd


def build_cost(die_mm2: float, dies: int, wafer_usd: float, defects_per_cm2: float, packaging_usd: float,
               hbm_gb: float, hbm_usd_per_gb: float, yield_model: str = "murphy") -> BuildCost:
    """One chip of ``dies`` dies of ``die_mm2``: each good die costs a wafer over the good dies it
    gives; add the package and ``hbm_gb`` of HBM at ``hbm_usd_per_gb``. A die too large for the
    gross-die formula that still fits in the wafer is wafer-scale: one per wafer, yield 1 (spare
    cores take the defects)."""
    per_wafer, y = dies_per_wafer(die_mm2), die_yield(die_mm2, defects_per_cm2, yield_model)
    if per_wafer == 0:
        if die_mm2 > math.pi * WAFER_DIAMETER_MM ** 2 / 4:
            raise ValueError(f"a {die_mm2:,.0f} mm² die does not fit on a {WAFER_DIAMETER_MM:g} mm wafer")
        # a wafer-scale part: one per wafer, defects routed around by spare cores (Cerebras, S12)
        per_wafer, y = 1, 1.0
    return BuildCost(die_mm2, dies, per_wafer, y, wafer_usd / (per_wafer * y), packaging_usd, hbm_gb * hbm_usd_per_gb)

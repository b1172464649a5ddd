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

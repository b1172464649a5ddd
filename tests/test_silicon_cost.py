"""What a chip costs to build (asicsim.studies.economics): dies per wafer, yield, good-die cost, and
the open-vs-closed study's silicon columns."""

from __future__ import annotations

import math

import pytest
import yaml

from asicsim.errors import InputError
from asicsim.hardware import load_chip
from asicsim.hardware.area import estimate_area
from asicsim.hardware.nodes import NODES
from asicsim.scenario import load_scenario
from asicsim.studies.economics import build_cost, die_yield, dies_per_wafer
from asicsim.studies.open_closed import _silicon


def test_dies_per_wafer_is_the_gross_die_estimate():
    """100 mm² on a 300 mm wafer: π·300²/400 − π·300/√200 = 706.9 − 66.6 = 640 whole dies."""
    assert dies_per_wafer(100) == 640
    assert dies_per_wafer(815) == math.floor(math.pi * 300**2 / (4 * 815) - math.pi * 300 / math.sqrt(1630))
    assert dies_per_wafer(50) > 2 * dies_per_wafer(100) > 0  # the edge costs small dies less
    assert dies_per_wafer(46225) == 0


def test_yield_models():
    assert die_yield(1e-9, 0.1) == pytest.approx(1.0)
    assert die_yield(100, 1.0) == pytest.approx((1 - math.exp(-1)) ** 2)          # Murphy at AD = 1
    assert die_yield(100, 1.0, "negative_binomial") == pytest.approx((4 / 3) ** -3)  # alpha 3
    assert die_yield(800, 0.1) < die_yield(400, 0.1) < die_yield(100, 0.1)
    with pytest.raises(ValueError, match="unknown yield model"):
        die_yield(100, 0.1, "poisson")


def test_good_die_cost_is_a_wafer_over_its_good_dies():
    n5 = NODES["tsmc-n5"]
    c = build_cost(814, 1, n5.wafer_usd, 0.1, 1670, 80, 17.5)
    assert c.die_usd == pytest.approx(n5.wafer_usd / (dies_per_wafer(814) * die_yield(814, 0.1)))
    assert c.hbm_usd == pytest.approx(80 * 17.5)
    assert c.usd == pytest.approx(c.die_usd + 1670 + 1400)
    two = build_cost(407, 2, n5.wafer_usd, 0.1, 1670, 80, 17.5)
    assert two.dies * two.die_usd < c.die_usd  # two half-size dies yield better than one
    assert build_cost(814, 1, n5.wafer_usd, 0.2, 0, 0, 0).die_usd > c.die_usd


def test_wafer_scale_part_is_one_per_wafer():
    c = build_cost(46225, 1, 16988, 0.1, 0, 0, 0)
    assert (c.dies_per_wafer, c.yield_fraction, c.usd) == (1, 1.0, 16988)
    with pytest.raises(ValueError, match="does not fit"):
        build_cost(80000, 1, 16988, 0.1, 0, 0, 0)


def _spec(tmp_path, silicon: dict | None = None, **chip_extra):
    chips = {"h100-sxm": {"chip_price_usd": 27500, "source": "Barron's", "packaging_usd": 1670,
                          "packaging_source": "A13"},
             "taalas-hc1": {"chip_price_usd": 10000, "source": "assumption", **chip_extra},
             "tpu-v6e": {"chip_price_usd": 15000, "source": "assumption", "power_w": 300, "power_source": "x",
                         "packaging_usd": 100, "packaging_source": "assumption"}}
    econ = {"electricity_usd_per_kwh": 0.08, "electricity_source": "EIA", "service_life_months": 48,
            "service_life_source": "a", "utilisation": 0.5, "utilisation_source": "a", "model_lifetime_months": 12,
            "model_lifetime_source": "a", "chips": chips}
    if silicon is not None:
        econ["silicon"] = silicon
    doc = {"kind": "open-vs-closed", "name": "s", "model": "llama-3.1-8b", "systems": list(chips), "economics": econ}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_scenario(path)


SILICON = {"hbm_usd_per_gb": 17.5, "hbm_source": "A12"}


def test_study_rows_price_the_silicon(tmp_path):
    spec = _spec(tmp_path, SILICON)
    h100 = _silicon(spec, "h100-sxm", _system("h100-sxm"))
    n4 = NODES["tsmc-n4"]
    assert h100["area_mm2_public"] == 814 and h100["die_area_basis"] == "public"
    assert h100["build_usd"] == pytest.approx(build_cost(814, 1, n4.wafer_usd, n4.defect_density_per_cm2,
                                                         1670, 80, 17.5).usd)
    hc1 = _silicon(spec, "taalas-hc1", _system("taalas-hc1"))
    assert hc1["build_usd"] is None  # no packaging_usd given: not priced
    assert hc1["area_mm2_estimate"] == pytest.approx(estimate_area(load_chip("taalas-hc1")).total_mm2)
    tpu = _silicon(spec, "tpu-v6e", _system("tpu-v6e"))
    assert tpu["build_usd"] is None and tpu["area_mm2_estimate"] is None  # node not public
    # an override by node moves the price
    dear = _silicon(_spec(tmp_path, {**SILICON, "wafer_usd": {"tsmc-n4": 2 * n4.wafer_usd},
                                     "overrides_source": "test"}), "h100-sxm", _system("h100-sxm"))
    assert dear["die_usd"] == pytest.approx(2 * h100["die_usd"])


def test_silicon_section_errors(tmp_path):
    with pytest.raises(InputError, match="no process node tsmc-n2"):
        _spec(tmp_path, {**SILICON, "wafer_usd": {"tsmc-n2": 30000}, "overrides_source": "x"})
    with pytest.raises(InputError, match="packaging_usd needs a packaging_source"):
        _spec(tmp_path, SILICON, packaging_usd=100)
    with pytest.raises(InputError, match="overrides_source"):
        _spec(tmp_path, {**SILICON, "defect_density_per_cm2": {"tsmc-n4": 0.2}})


def _system(name):
    from asicsim.hardware import load_system

    return load_system(name)

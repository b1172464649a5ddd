"""Request-length presets with the statistics of public serving benchmarks (``serve --lengths``).

Each preset draws (prompt, output) token counts, seeded, from published statistics; the numbers
and their sources are the "Serving length presets" block of docs/sources.md (rows L1..L6):

- ``fixed-128-128``, ``fixed-1000-1000``, ``fixed-2048-2048``: the synthetic sets of
  TensorRT-LLM's ``trtllm-bench`` performance overview (``prepare_dataset.py token-norm-dist``
  with both standard deviations 0: every request the same length) (L1).
- ``openorca``: the MLPerf Inference Llama-2-70B set (24,576 OpenOrca samples). Published:
  inputs and outputs shorter than 1,024 tokens and outputs of at least 3 (``processorca.py``,
  L2), and a mean of 294.45 output tokens per sample in the reference run (L3). No published
  input mean was found: inputs are drawn uniform over the allowed range (an assumption, L4).
- ``sharegpt``: ShareGPT conversations as the vLLM paper tokenised them, mean input 161.31 and
  mean output 337.99 tokens (L5), kept to 4..1,024 tokens each as JetStream's and vLLM's
  ``benchmark_serving.py`` filter them (L6).

Where only a mean and bounds are published, lengths are lognormal with sigma 1 (an assumed
spread: the shape is not published) whose location is solved so that the mean *after*
clipping to the bounds is the published mean; counts are rounded to whole tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asicsim.errors import InputError

SIGMA = 1.0  # assumed lognormal spread where a benchmark publishes only a mean and bounds


@dataclass(frozen=True)
class Lengths:
    """One side (prompt or output) of a preset: ``fixed`` at ``mean``; ``uniform`` over
    [lo, hi]; or ``lognormal`` with ``mean`` after clipping to [lo, hi]."""

    kind: str
    mean: float
    lo: int
    hi: int

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, int(self.mean))
        if self.kind == "uniform":
            return rng.integers(self.lo, self.hi + 1, size=n)
        mu = _location(self.mean, self.lo, self.hi)
        x = np.exp(rng.normal(mu, SIGMA, size=n))
        return np.clip(np.rint(x), self.lo, self.hi).astype(int)


@dataclass(frozen=True)
class Preset:
    name: str
    prompt: Lengths
    output: Lengths
    description: str
    sources: str  # docs/sources.md rows

    def draw(self, n: int, seed: int = 0) -> list[tuple[int, int]]:
        """``n`` (prompt, output) pairs, the same for the same seed."""
        if n < 1:
            raise InputError("--requests", None, f"must be at least 1, got {n}")
        rng = np.random.default_rng(seed)
        ps, os_ = self.prompt.draw(rng, n), self.output.draw(rng, n)
        return list(zip(ps.tolist(), os_.tolist()))


def _fixed(tokens: int) -> Lengths:
    return Lengths("fixed", float(tokens), tokens, tokens)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fixed-128-128", _fixed(128), _fixed(128), "trtllm-bench synthetic set: 128 in, 128 out", "L1"),
    Preset("fixed-1000-1000", _fixed(1000), _fixed(1000), "trtllm-bench synthetic set: 1,000 in, 1,000 out", "L1"),
    Preset("fixed-2048-2048", _fixed(2048), _fixed(2048), "trtllm-bench synthetic set: 2,048 in, 2,048 out", "L1"),
    Preset("openorca", Lengths("uniform", 512.0, 1, 1023), Lengths("lognormal", 294.45, 3, 1023),
           "MLPerf Llama-2-70B OpenOrca: outputs mean 294.45 (3..1,023); inputs < 1,024, uniform (assumed)",
           "L2, L3, L4"),
    Preset("sharegpt", Lengths("lognormal", 161.31, 4, 1024), Lengths("lognormal", 337.99, 4, 1024),
           "ShareGPT (vLLM paper): inputs mean 161.31, outputs mean 337.99, each 4..1,024", "L5, L6"),
)}


def names() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> Preset:
    """The preset called ``name``, or an InputError listing the presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError("--lengths", None, f"unknown length preset {name!r}; presets are: "
                         + ", ".join(PRESETS)) from None


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def clipped_mean(mu: float, lo: float, hi: float, sigma: float = SIGMA) -> float:
    """E[min(max(X, lo), hi)] for X lognormal(mu, sigma), in closed form."""
    a, b = math.log(lo), math.log(hi)
    inside = math.exp(mu + sigma ** 2 / 2) * (_phi((b - mu - sigma ** 2) / sigma) - _phi((a - mu - sigma ** 2) / sigma))
    return inside + lo * _phi((a - mu) / sigma) + hi * (1.0 - _phi((b - mu) / sigma))


def _location(mean: float, lo: int, hi: int) -> float:
    """The lognormal location whose mean after clipping to [lo, hi] is ``mean`` (bisection)."""
    if not lo < mean < hi:
        raise ValueError(f"mean {mean} must lie strictly inside [{lo}, {hi}]")
    a, b = math.log(lo) - 10 * SIGMA, math.log(hi) + 10 * SIGMA
    for _ in range(200):
        mid = (a + b) / 2
        if clipped_mean(mid, lo, hi) < mean:
            a = mid
        else:
            b = mid
    return (a + b) / 2

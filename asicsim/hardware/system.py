"""A System: chips and the network between them, as frozen specs and a networkx graph.

Nodes of the graph are chips, named ``chip0`` ... ``chip{n-1}`` (attribute ``kind="chip"``),
and switches (``kind="switch"``); edges are links carrying ``bandwidth_gbps`` (each way, the
effective rate: the link's times the network's measured ``efficiency``) and ``latency_ns``. Routes between chips come from the graph: dimension order on a torus, the
shortest path otherwise. The compiler turns every directed edge of a route into a contended
server, so the topology decides where bytes travel and which transfers queue.
"""

from __future__ import annotations

import itertools
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from asicsim.errors import InputError
from asicsim.safeio import exists, is_file, load_yaml
from asicsim.hardware.spec import ChipSpec, NetworkSpec, Spec, Topology, drop_inherited_in_switch

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
MAX_CHIPS = 65_536          # the most chips a system may have (a pod of pods); more is refused
MAX_BLOCKS = 100_000        # block instances in a system (each a simulated process): past ~10 s to build
EXPLICIT_MESH_CHIPS = 256   # a full mesh of more chips keeps its n² links implicit

if TYPE_CHECKING:  # networkx is imported where a topology is built: a one-chip run never needs it
    import networkx as nx


class SystemSpec(Spec):
    """``count`` copies of one chip joined by a network: the chip's own, with any fields given in
    ``network`` (those of a NetworkSpec: ``topology``, ``dims``, ``bandwidth_gbps`` ...) over it."""

    name: str
    description: str = ""
    chip: str | ChipSpec
    count: int = 1
    network: dict | NetworkSpec | None = None


Edge = tuple[str, str]


@dataclass(frozen=True)
class System:
    """A built system: its chips in order, its network spec, and the topology graph."""

    name: str
    chips: tuple[ChipSpec, ...]
    source: str
    _graph: nx.Graph | None = field(compare=False, repr=False)  # None: one chip, its graph built when asked
    network: NetworkSpec | None = None
    _routes: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def graph(self) -> nx.Graph:
        """The topology: chips, switches and the links between them."""
        if self._graph is None:
            object.__setattr__(self, "_graph", _single())
        return self._graph

    @property
    def chip(self) -> ChipSpec:
        return self.chips[0]

    @property
    def topology(self) -> str:
        if self.network is None or len(self.chips) == 1:
            return "single chip"
        net = self.network
        dims = "x".join(str(d) for d in net.dims) + " " if net.dims else ""
        kind = "mesh" if net.topology is Topology.TORUS and not net.wraparound else net.topology.value
        return f"{dims}{kind}"

    def route(self, a: int, b: int) -> tuple[Edge, ...]:
        """The directed links a transfer from chip ``a`` to chip ``b`` crosses, in order."""
        key = (a, b)
        if key not in self._routes:
            self._routes[key] = _route(self, a, b)
        return self._routes[key]

    def link(self, e: Edge) -> dict:
        """A link's attributes (``bandwidth_gbps`` each way, effective; ``latency_ns``). A large
        full mesh keeps its links implicit: every pair has the network's link."""
        if self.graph.graph.get("implicit_full_mesh"):
            net = self.network
            return {"bandwidth_gbps": net.bandwidth_gbps * net.efficiency, "latency_ns": net.latency_ns}
        return self.graph.edges[e]

    def route_latency_ns(self, path: tuple[Edge, ...]) -> float:
        """Latency of a route: its links' plus each switch crossed."""
        g = self.graph
        switches = sum(1 for _, v in path[:-1] if g.nodes[v]["kind"] == "switch")
        sw = self.network.switch_latency_ns if self.network else 0.0
        return sum(self.link(e)["latency_ns"] for e in path) + switches * sw


def preset_names() -> list[str]:
    """Every preset: chips and systems."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def chip_preset_names() -> list[str]:
    """Presets that describe one chip (their file has ``blocks``)."""
    return [n for n in preset_names() if "blocks" in _read_yaml(PRESETS_DIR / f"{n}.yaml")]


def system_preset_names() -> list[str]:
    """Presets that describe several chips of one kind and their network (a ``chip`` and a ``count``)."""
    return [n for n in preset_names() if "blocks" not in _read_yaml(PRESETS_DIR / f"{n}.yaml")]


def _read_yaml(path: Path) -> dict:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(str(path), None, "must hold a YAML mapping at the top level")
    return data


_CLIP = reprlib.Repr()
_CLIP.maxlevel, _CLIP.maxlist, _CLIP.maxdict, _CLIP.maxstring, _CLIP.maxother = 3, 4, 4, 60, 60


SHOWN_ERRORS = 6    # problems a file's error lists before counting the rest ...
ERROR_CHARS = 500   # ... or once it is this long


def validation_error(source: str, err: ValidationError, within: tuple = ()) -> InputError:
    """Turn pydantic's report into our one-paragraph error: every problem (up to a few) with its
    field and, in a YAML file, its line — an unknown field beside a missing one, so a misspelt
    name shows both. ``within``: where in the file the validated part sits (e.g. ``("network",)``)."""
    from asicsim.safeio import yaml_line

    errors = err.errors()
    has_file = source.endswith((".yaml", ".yml")) and is_file(source)
    parts, first_loc = [], None
    for e in errors[:SHOWN_ERRORS]:
        if sum(len(p) + 2 for p in parts) > ERROR_CHARS:  # keep the paragraph readable
            break
        loc = within + tuple(x for x in e["loc"] if not str(x).startswith("function-after"))
        name = ".".join(str(x) for x in loc)
        first_loc = first_loc if first_loc is not None else name
        reason = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            reason += " (not a field here: misspelt?)"
        elif e.get("input") is not None and e["type"] not in ("missing", "value_error"):
            reason += f" (got {_CLIP.repr(e['input'])})"  # clipped: the input may be huge
        line = yaml_line(source, loc) if has_file else None
        if len(errors) == 1:
            parts.append(f"line {line}: {reason}" if line else reason)
        else:
            parts.append(f"{f'line {line}, ' if line else ''}field '{name}': {reason}")
    more = len(errors) - len(parts)
    reason = "; ".join(parts) + (f"; {more} more problem{'s' if more > 1 else ''}" if more else "")
    return InputError(source, (first_loc or None) if len(errors) == 1 else None, reason)


def _resolve(name_or_path: str, what: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or exists(p):
        if not is_file(p):
            raise InputError(str(p), None, f"no such {what} file")
        return p
    candidate = PRESETS_DIR / f"{name_or_path}.yaml"
    if not is_file(candidate):
        raise InputError(f"--{what}", None, f"unknown preset '{name_or_path}'; presets are: "
                         + ", ".join(preset_names()))
    return candidate


def load_chip(name_or_path: str) -> ChipSpec:
    """A chip preset by name, or a chip YAML by path."""
    path = _resolve(name_or_path, "chip")
    try:
        return ChipSpec.model_validate(_read_yaml(path))
    except ValidationError as e:
        raise validation_error(str(path), e) from None


def load_system(name_or_path: str) -> System:
    """A system YAML by path, or a chip preset name or chip YAML (a one-chip system)."""
    path = _resolve(name_or_path, "system")
    data = _read_yaml(path)
    if "blocks" in data:  # a chip file: a system of one
        try:
            chip = ChipSpec.model_validate(data)
        except ValidationError as e:
            raise validation_error(str(path), e) from None
        return build_system(SystemSpec(name=chip.name, chip=chip), str(path))
    try:
        spec = SystemSpec.model_validate(data)
    except ValidationError as e:
        raise validation_error(str(path), e) from None
    return build_system(spec, str(path))


def _system_chip(ref: str, source: str) -> ChipSpec:
    """A system file's ``chip``: a preset name, or a chip file's path taken relative to the
    system file (as a reader of the file expects), else to the working directory."""
    p = Path(ref)
    beside = Path(source).parent / p
    if not p.is_absolute() and p.suffix in (".yaml", ".yml") and is_file(str(beside)):
        ref = str(beside)
    try:
        return load_chip(ref)
    except InputError as e:
        if e.source == str(ref) or e.source.startswith("--"):  # the reference itself is bad: say where it is
            raise InputError(source, "chip", f"{e.source}: {e.reason}" if not e.source.startswith("--")
                             else e.reason) from None
        raise


def build_system(spec: SystemSpec, source: str = "<python>") -> System:
    """Expand a SystemSpec into chips and a topology graph; refuse a network that cannot carry
    the chips (a torus of the wrong size, chips left unconnected)."""
    chip = spec.chip if isinstance(spec.chip, ChipSpec) else _system_chip(spec.chip, source)
    if spec.count < 1:
        raise InputError(source, "count", f"must be at least 1, got {spec.count}")
    if spec.count > MAX_CHIPS:
        raise InputError(source, "count", f"{spec.count:,} chips is more than the {MAX_CHIPS:,} a system may have")
    per_chip = sum(getattr(b, "count", 1) for b in chip.blocks)
    if spec.count * per_chip > MAX_BLOCKS:
        raise InputError(source, "count", f"{spec.count:,} chips of {chip.name}, {per_chip:,} blocks each, make "
                         f"{spec.count * per_chip:,} blocks; at most {MAX_BLOCKS:,} are simulated in one system")
    net = merged_network(chip, spec.network, source)
    if spec.count > 1 and net is None:
        raise InputError(source, "network", f"a system of {spec.count} chips needs a network; {chip.name} "
                         "describes none (give the system a 'network', or the chip one)")
    where = "network" if spec.network is not None else f"chip {chip.name}: network"
    g = network_graph(spec.count, net, source, where) if spec.count > 1 else None
    return System(spec.name, (chip,) * spec.count, source, g, net)


def merged_network(chip: ChipSpec, override, source: str) -> NetworkSpec | None:
    """The chip's network with a system file's ``network`` fields over it (validated whole)."""
    if override is None:
        return chip.network
    if isinstance(override, NetworkSpec):
        return override
    base = chip.network.model_dump(exclude_defaults=True) if chip.network else {}
    if "topology" in override and override["topology"] != base.get("topology"):
        base = {k: v for k, v in base.items() if k not in ("dims", "edges", "in_switch_reduction", "collective")}
    merged = {**base, **override}
    drop_inherited_in_switch(merged, given=set(override))
    try:
        return NetworkSpec.model_validate(merged)
    except ValidationError as e:
        err = validation_error(source, e, ("network",))  # the line of the field under the file's network
        raise InputError(source, err.field or "network", err.reason) from None


def _single() -> nx.Graph:
    import networkx as nx

    g = nx.Graph()
    g.add_node("chip0", kind="chip", index=0)
    return g


def network_graph(n: int, net: NetworkSpec, source: str, where: str) -> nx.Graph:
    """The graph of ``n`` chips joined as ``net`` describes."""
    import networkx as nx

    g = nx.Graph()
    for i in range(n):
        g.add_node(f"chip{i}", kind="chip", index=i)
    link = {"bandwidth_gbps": net.bandwidth_gbps * net.efficiency, "latency_ns": net.latency_ns}
    match net.topology:
        case Topology.SWITCH:
            g.add_node("switch", kind="switch")
            for i in range(n):
                g.add_edge(f"chip{i}", "switch", **link)
        case Topology.FULLY_CONNECTED if n > EXPLICIT_MESH_CHIPS:  # n² links: keep them implicit
            g.graph["implicit_full_mesh"] = True
            return g
        case Topology.FULLY_CONNECTED:
            for i, j in itertools.combinations(range(n), 2):
                g.add_edge(f"chip{i}", f"chip{j}", **link)
        case Topology.RING:
            for i in range(n):
                if n > 1 and (i + 1 < n or n > 2):
                    g.add_edge(f"chip{i}", f"chip{(i + 1) % n}", **link)
        case Topology.TORUS:
            dims = net.dims
            if _prod(dims) != n:
                raise InputError(source, f"{where}.dims", f"a {'x'.join(map(str, dims))} torus holds "
                                 f"{_prod(dims)} chips, not {n}")
            for i in range(n):
                c = torus_coords(i, dims)
                for d, size in enumerate(dims):
                    if size > 1 and (net.wraparound or c[d] + 1 < size):
                        nb = list(c)
                        nb[d] = (c[d] + 1) % size
                        g.add_edge(f"chip{i}", f"chip{torus_index(nb, dims)}", **link)
        case Topology.CUSTOM:
            for k, e in enumerate(net.edges):
                for end in (e.a, e.b):
                    if end.startswith("chip") and end not in g:
                        raise InputError(source, f"{where}.edges.{k}", f"'{end}' is not one of the "
                                         f"{n} chips (chip0 ... chip{n - 1})")
                    if end not in g:
                        g.add_node(end, kind="switch")
                g.add_edge(e.a, e.b, bandwidth_gbps=(e.bandwidth_gbps or net.bandwidth_gbps) * net.efficiency,
                           latency_ns=net.latency_ns if e.latency_ns is None else e.latency_ns)
    parts = list(nx.connected_components(g))
    if len(parts) > 1:
        first = next(p for p in parts if "chip0" in p)
        cut = sorted((v for v in g if v not in first and g.nodes[v]["kind"] == "chip"),
                     key=lambda v: g.nodes[v]["index"])
        raise InputError(source, where, f"the network leaves {', '.join(cut)} disconnected from chip0: "
                         "every chip must be reachable")
    return g


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def torus_coords(i: int, dims: tuple[int, ...]) -> tuple[int, ...]:
    """A chip's coordinates on a torus, first dimension slowest (row-major)."""
    out = []
    for size in reversed(dims):
        i, r = divmod(i, size)
        out.append(r)
    return tuple(reversed(out))


def torus_index(coords, dims: tuple[int, ...]) -> int:
    i = 0
    for c, size in zip(coords, dims):
        i = i * size + c
    return i


def _route(system: System, a: int, b: int) -> tuple[Edge, ...]:
    net, g = system.network, system.graph
    if a == b:
        return ()
    if net is not None and net.topology is Topology.TORUS:  # dimension order: finish dim 0 first
        dims, here, hops = net.dims, list(torus_coords(a, net.dims)), []
        goal = torus_coords(b, dims)
        for d, size in enumerate(dims):
            while here[d] != goal[d]:
                fwd = (goal[d] - here[d]) % size
                if net.wraparound:
                    step = 1 if fwd <= size - fwd else -1
                else:  # a mesh: straight along the dimension
                    step = 1 if goal[d] > here[d] else -1
                nxt = list(here)
                nxt[d] = (here[d] + step) % size
                hops.append((f"chip{torus_index(here, dims)}", f"chip{torus_index(nxt, dims)}"))
                here = nxt
        return tuple(hops)
    if g.graph.get("implicit_full_mesh"):
        return ((f"chip{a}", f"chip{b}"),)
    import networkx as nx

    path = nx.shortest_path(g, f"chip{a}", f"chip{b}")
    return tuple(zip(path[:-1], path[1:]))


def with_chips(system: System, n: int, source: str = "--chips") -> System:
    """``system`` with ``n`` chips of its kind on the same network (a chip preset: its own)."""
    if n == len(system.chips):
        return system
    net = system.network
    if net is None:
        raise InputError(source, None, f"{system.chip.name} describes no network to join {n} chips; "
                         "give a system file with a 'network'")
    if net.topology is Topology.TORUS and _prod(net.dims) != n:
        raise InputError(source, None, f"{system.name} is a {'x'.join(map(str, net.dims))} torus of "
                         f"{_prod(net.dims)} chips; {n} chips need a system file with other dims")
    name = f"{system.chip.name} x{n}" if len(system.chips) == 1 else f"{system.name} ({n} chips)"
    return build_system(SystemSpec(name=name, chip=system.chip, count=n, network=net), system.source)


def instance_name(chip: int, block: str, index: int, count: int) -> str:
    return f"chip{chip}.{block}" if count == 1 else f"chip{chip}.{block}[{index}]"

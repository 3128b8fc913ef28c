"""The grid of a sweep, from the command line or a TOML file: every list is an axis.

    harness sweep --preset tiny --quant q8_0,q4_k_m --fdn 0,16 --pp 32 --tg 8 -r 2 -o DIR

is 2 models x 2 fdn thresholds = 4 points, each measured with the tests pp32 and tg8 (as in
llama-bench, the -p and -n lengths are tests of each point, not axes crossed with each other).
A TOML file takes the same keys (lists or scalars; `vocab_strategy` or `vocab-strategy`):

    preset = "tiny"
    quant = ["q8_0", "q4_k_m"]
    fdn = [0, 16]
    pp = 32
    tg = 8
    repetitions = 2

Values given on the command line replace the file's.
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field

from harness.measure.bench import SPREAD_LIMIT, BenchConfig
from harness.settings import DEFAULT_FDN_THRESHOLD
from harness.errors import UsageError
from harness.ggml_types import CACHE_TYPES

ISA_CHOICES = ("auto", "scalar", "avx2", "avx512", "neon")


# ----------------------------------------------------------------------------
# values

def split_list(text, conv, name: str) -> list:
    """'0,16' / [0, 16] / 16 -> a list of converted values; UsageError naming the key otherwise
    (an empty item, as in '8,,16', is an error too)."""
    items = text if isinstance(text, list) else str(text).split(",") if isinstance(text, str) else [text]
    out = []
    for it in items:
        if isinstance(it, str):
            it = it.strip()
            if not it:
                if isinstance(text, str) and not text.strip():
                    continue            # nothing at all: "empty list" below
                raise UsageError(f"{name}: empty item in {text!r}")
        try:
            out.append(conv(it))
        except (TypeError, ValueError) as e:
            raise UsageError(f"{name}: {e}") from None
    if not out:
        raise UsageError(f"{name}: empty list")
    return out


def int_at_least(minimum: int):
    def conv(v) -> int:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError(f"expected an integer, got {v!r}")
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {v!r}") from None
        if n < minimum:
            raise ValueError(f"must be >= {minimum}, got {n}")
        return n
    return conv


def choice(options):
    def conv(v) -> str:
        v = str(v)
        if v not in options:
            raise ValueError(f"{v!r} is not one of {', '.join(options)}")
        return v
    return conv


def parse_cpus(text: str) -> tuple[int, ...]:
    """'0-3,6' -> (0, 1, 2, 3, 6)."""
    cpus = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise UsageError(f"pin: expected CPU numbers like 0-3,6, got {text!r}") from None
        if lo < 0 or hi < lo:
            raise UsageError(f"pin: bad CPU range {part!r}")
        cpus.update(range(lo, hi + 1))
    if not cpus:
        raise UsageError("pin: no CPUs given")
    return tuple(sorted(cpus))


def _vocab_strategy(v) -> str:
    """A strategy whose syntax parses (whether the engine has it is checked before the sweep runs)."""
    from harness.engine.vocab import parse_strategy
    v = str(v).strip()
    if not v:
        raise ValueError("empty vocab strategy")
    try:
        parse_strategy(v)
    except UsageError as e:
        raise ValueError(str(e)) from None
    return v


# ----------------------------------------------------------------------------
# the grid

@dataclass(frozen=True)
class ModelSource:
    """A model file, or a synthetic preset x quant made and cached on first use."""
    path: str | None = None
    preset: str | None = None
    quant: str | None = None

    @property
    def label(self) -> str:
        return self.path if self.path else f"{self.preset}-{self.quant}"

    def resolve(self) -> str:
        if self.path:
            return self.path
        from harness.model.synth import cached_model
        return cached_model(self.preset, self.quant)


@dataclass
class SweepGrid:
    models: list[ModelSource]
    isa: list[str] = field(default_factory=lambda: ["auto"])
    threads: list[int] = field(default_factory=lambda: [2])
    ubatch: list[int] = field(default_factory=lambda: [512])
    fdn: list[int] = field(default_factory=lambda: [DEFAULT_FDN_THRESHOLD])
    vocab_strategy: list[str] = field(default_factory=lambda: ["full"])
    type_k: list[str] = field(default_factory=lambda: ["f32"])    # KV cache types
    type_v: list[str] = field(default_factory=lambda: ["f32"])
    depth: list[int] = field(default_factory=lambda: [0])
    pp: list[int] = field(default_factory=lambda: [512])
    tg: list[int] = field(default_factory=lambda: [128])
    repetitions: int = 3
    warmup: int = 1
    seed: int = 0
    profile: bool = True
    cpus: tuple[int, ...] | None = None
    spread_limit: float = SPREAD_LIMIT
    quality: int = 0       # > 0: accuracy measures over this many tokens per (model, vocab strategy)

    def tests(self) -> list[tuple[int, int]]:
        """(n_prompt, n_gen) of each test of a point: every pp length, then every tg length."""
        return [(p, 0) for p in self.pp if p] + [(0, g) for g in self.tg if g]

    def points(self) -> list[tuple[ModelSource, BenchConfig]]:
        """Every point of the grid (models outermost), as a BenchConfig without test lengths."""
        out = []
        for m, isa, t, v, ck, cv, d, ub, f in itertools.product(self.models, self.isa, self.threads,
                                                                self.vocab_strategy, self.type_k, self.type_v,
                                                                self.depth, self.ubatch, self.fdn):
            out.append((m, BenchConfig(n_prompt=0, n_gen=0, repetitions=self.repetitions, threads=t, isa=isa,
                                       ubatch=ub, fdn_threshold=f, seed=self.seed, n_depth=d, vocab_strategy=v,
                                       type_k=ck, type_v=cv,
                                       warmup=self.warmup, profile=self.profile, cpus=self.cpus,
                                       spread_limit=self.spread_limit)))
        return out

    @property
    def size(self) -> int:
        return len(self.points()) * len(self.tests())


# key -> (converter of one item, is a list axis)
AXES = {
    "isa": (choice(ISA_CHOICES), True), "threads": (int_at_least(1), True), "ubatch": (int_at_least(1), True),
    "fdn": (int_at_least(0), True), "vocab_strategy": (_vocab_strategy, True), "depth": (int_at_least(0), True),
    "type_k": (choice(list(CACHE_TYPES)), True), "type_v": (choice(list(CACHE_TYPES)), True),
    "pp": (int_at_least(0), True), "tg": (int_at_least(0), True),
}
SCALARS = {"repetitions": int_at_least(1), "warmup": int_at_least(0), "seed": int_at_least(0),
           "quality": int_at_least(0)}
MODEL_KEYS = ("preset", "quant", "model")
OTHER_KEYS = ("profile", "pin", "spread_limit", "output")
ALIASES = {"vocab-strategy": "vocab_strategy", "r": "repetitions", "fdn_threshold": "fdn",
           "n_threads": "threads", "n_ubatch": "ubatch", "n_depth": "depth", "models": "model",
           "presets": "preset", "quants": "quant", "spread-limit": "spread_limit", "cache_type_k": "type_k",
           "cache_type_v": "type_v", "cache-type-k": "type_k", "cache-type-v": "type_v"}
KNOWN_KEYS = set(AXES) | set(SCALARS) | set(MODEL_KEYS) | set(OTHER_KEYS)


def read_toml(path: str) -> dict:
    """The keys of a sweep TOML file (aliases folded); UsageError naming the file on any problem."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise UsageError("reading a TOML grid needs Python 3.11+ or the tomli package") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    if "sweep" in data and isinstance(data["sweep"], dict) and len(data) == 1:
        data = data["sweep"]          # an optional [sweep] table
    out = {}
    for k, v in data.items():
        key = ALIASES.get(k, k)
        if key not in KNOWN_KEYS:
            raise UsageError(f"{path}: unknown key {k!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
        out[key] = v
    return out


def build_grid(values: dict, source: str = "command line") -> SweepGrid:
    """A SweepGrid from raw values (strings with commas, lists or scalars), keyed as in AXES,
    SCALARS, MODEL_KEYS and OTHER_KEYS; None means not given. Checks everything it can without
    touching a model or the CPU."""
    from harness.model.presets import PRESETS
    from harness.model.synth import check_quant

    def get(key, conv):
        return split_list(values[key], conv, f"{source}: {key}") if values.get(key) is not None else None

    presets = get("preset", choice(list(PRESETS))) or []
    quants = get("quant", check_quant)
    paths = get("model", str) or []
    if quants and not presets:
        raise UsageError(f"{source}: quant applies to synthetic presets; give --preset too "
                         f"(a --model file has its own types)")
    if not presets and not paths:
        raise UsageError(f"{source}: no models: give --preset NAME[,NAME] (with --quant) and/or --model PATH")
    for p in paths:
        if not os.path.isfile(p):
            raise UsageError(f"{source}: model file {p!r} does not exist")
    models = [ModelSource(path=os.path.abspath(p)) for p in paths]
    models += [ModelSource(preset=p, quant=q) for p in presets for q in (quants or ["q4_k_m"])]
    grid = SweepGrid(models=_unique(models))
    for key, (conv, _) in AXES.items():
        vals = get(key, conv)
        if vals is not None:
            setattr(grid, key, _unique(vals))
    for key, conv in SCALARS.items():
        if values.get(key) is not None:
            vals = split_list(values[key], conv, f"{source}: {key}")
            if len(vals) != 1:
                raise UsageError(f"{source}: {key} takes one value, got {len(vals)}")
            setattr(grid, key, vals[0])
    if values.get("profile") is not None:
        if not isinstance(values["profile"], bool):
            raise UsageError(f"{source}: profile must be true or false")
        grid.profile = values["profile"]
    if values.get("pin") not in (None, ""):
        grid.cpus = parse_cpus(values["pin"])
    if values.get("spread_limit") is not None:
        text = str(values["spread_limit"]).strip()
        try:
            limit = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
        except ValueError:
            limit = math.nan
        if not 0 < limit < math.inf:
            raise UsageError(f"{source}: spread_limit must be a positive number like 0.05 or 5%, got {text!r}")
        grid.spread_limit = limit
    if not grid.tests():
        raise UsageError(f"{source}: nothing to measure: every --pp and --tg length is 0")
    return grid


def merge(file_values: dict, cli_values: dict) -> dict:
    """Command-line values (those given, not None) over the file's."""
    out = dict(file_values)
    out.update({k: v for k, v in cli_values.items() if v is not None})
    return out


def _unique(items: list) -> list:
    seen, out = set(), []
    for it in items:
        if it not in seen:
            seen.add(it)
            out.append(it)
    return out

"""A reader of cachegrind's output file (`--cachegrind-out-file`): the event names, the cost of
each (source file, function) pair, and the whole program's summary.

The format (valgrind's docs, "Cachegrind output file format") is line based: `desc:` and `cmd:`
lines, one `events:` line naming the columns (Ir, or Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw with
--cache-sim=yes), then `fl=FILE` (and, in newer valgrinds, `fi=`/`fe=` for inlined files) and
`fn=NAME` lines, each followed by cost lines `LINE COST...`, and a closing `summary:` line with
the totals. A cost line may leave trailing zero columns out."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError


class CachegrindFileError(HarnessError):
    """A cachegrind output file that is missing, truncated or not in the format read here."""


@dataclass
class CachegrindProfile:
    """The costs of one cachegrind run: event names, each (file, function)'s summed cost per
    event, and the summary line (the whole program)."""
    events: tuple[str, ...]
    summary: tuple[int, ...]
    by_function: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def column(self, event: str) -> int:
        """Index of an event (Ir, D1mr, ...); CachegrindFileError when the run did not count it."""
        try:
            return self.events.index(event)
        except ValueError:
            raise CachegrindFileError(f"cachegrind did not count {event} (events: {' '.join(self.events)})") from None

    def total(self, event: str) -> int:
        """The whole program's count of one event (the summary line)."""
        return self.summary[self.column(event)]

    def total_where(self, event: str, keep: Callable[[str, str], bool]) -> int:
        """The count of one event over the (file, function) pairs that keep(file, function) accepts."""
        i = self.column(event)
        return sum(cost[i] for (fl, fn), cost in self.by_function.items() if keep(fl, fn))


def _numbers(text: str, what: str, path: Path) -> list[int]:
    try:
        return [int(x) for x in text.split()]
    except ValueError:
        raise CachegrindFileError(f"{path}: {what} is not a list of integers: {text[:60]!r}") from None


def read_cachegrind(path: str | Path) -> CachegrindProfile:
    """Parse one cachegrind output file."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        raise CachegrindFileError(f"cannot read cachegrind output {path}: {e.strerror}") from None
    events: tuple[str, ...] = ()
    summary: tuple[int, ...] | None = None
    by_function: dict[tuple[str, str], list[int]] = {}
    fl, fn = "???", "???"
    cost: list[int] | None = None
    for line in lines:
        if not line or line.startswith(("desc:", "cmd:", "#")):
            continue
        if line.startswith("events:"):
            events = tuple(line.split(":", 1)[1].split())
        elif line.startswith(("fl=", "fi=", "fe=")):
            fl = line[3:]
            cost = None
        elif line.startswith("fn="):
            fn = line[3:]
            cost = None
        elif line.startswith("summary:"):
            summary = tuple(_numbers(line.split(":", 1)[1], "the summary line", path))
        elif line[0].isdigit():
            if not events:
                raise CachegrindFileError(f"{path}: a cost line before the events: line")
            if cost is None:
                cost = by_function.setdefault((fl, fn), [0] * len(events))
            values = _numbers(line, "a cost line", path)[1:]     # the first number is the source line
            if len(values) > len(events):
                raise CachegrindFileError(f"{path}: a cost line with {len(values)} values for {len(events)} events")
            for i, v in enumerate(values):
                cost[i] += v
    if not events or summary is None:
        raise CachegrindFileError(f"{path}: no {'events' if not events else 'summary'}: line "
                                  f"(not a whole cachegrind output file)")
    if len(summary) < len(events):
        summary = summary + (0,) * (len(events) - len(summary))
    return CachegrindProfile(events, summary, by_function)

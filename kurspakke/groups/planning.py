"""How "fordel automatisk" shares people among groups: levelled sizes, workplaces kept together. Pure functions over
plain values, so the rules are read (and tested) apart from the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kurspakke.groups.models import MentorGroup
from kurspakke.licences.models import Seat


def workplace_key(workplace: str) -> str:
    """Workplaces compare by their words, case-insensitively ("Sykehjem" and " sykehjem " are one)."""
    return " ".join(workplace.split()).casefold()


def mixed(workplaces: Iterable[str]) -> bool:
    """Whether people of these workplaces come from more than one (the confidentiality reminder). An unknown
    (empty) workplace counts as one more: the reminder is shown when in doubt. The one rule every page uses."""
    return len({workplace_key(w) for w in workplaces}) > 1


@dataclass
class Slot:
    """A group distribute may fill: its members now, its target after levelling, the workplaces it holds."""

    order: int
    group: MentorGroup | None  # None: a group to create
    count: int
    target: int = 0
    workplaces: set[str] = field(default_factory=set)
    seats: list[Seat] = field(default_factory=list)

    @property
    def room(self) -> int:
        return self.target - self.count - len(self.seats)


def _level(slots: Sequence[Slot], people: int) -> None:
    """Targets after giving ``people`` one at a time to the smallest group (the first of equals): sizes end as even
    as the groups' current members allow, and differ by at most one when they started even."""
    for slot in slots:
        slot.target = slot.count
    for _ in range(people):
        smallest = min(slots, key=lambda s: (s.target, s.order))
        smallest.target += 1


def _blocks(seats: Sequence[Seat]) -> list[list[Seat]]:
    """The seats by workplace, the largest workplace first (then by name); people without a workplace last, one
    block each (they have nobody to be kept with)."""
    by_workplace: dict[str, list[Seat]] = {}
    loose: list[Seat] = []
    for seat in sorted(seats, key=lambda s: s.id):
        key = workplace_key(seat.workplace)
        if key:
            by_workplace.setdefault(key, []).append(seat)
        else:
            loose.append(seat)
    ordered = sorted(by_workplace.items(), key=lambda item: (-len(item[1]), item[0]))
    return [block for _, block in ordered] + [[seat] for seat in loose]


def _pack(slots: Sequence[Slot], blocks: Sequence[list[Seat]]) -> None:
    """Best fit decreasing: each workplace goes whole to the group that fits it most tightly, preferring a group that
    already has people of that workplace; a workplace larger than any group's room is split, filling the roomiest
    group first, and the rest placed again."""
    for block in blocks:
        key = workplace_key(block[0].workplace)
        rest = list(block)
        while rest:
            fitting = [s for s in slots if s.room >= len(rest)]
            if fitting:
                slot = min(fitting, key=lambda s: (key not in s.workplaces or not key, s.room, s.order))
            else:
                slot = min((s for s in slots if s.room > 0), key=lambda s: (-s.room, s.order))
            taken, rest = rest[: slot.room], rest[slot.room :]
            slot.seats.extend(taken)
            if key:
                slot.workplaces.add(key)


def plan(slots: Sequence[Slot], seats: Sequence[Seat]) -> None:
    """Fill the slots' ``seats``: level the targets, then pack the workplaces. The caller gives slots enough room
    (at least ceil(total / size) of them, none above size), so no target passes size."""
    _level(slots, len(seats))
    _pack(slots, _blocks(seats))


__all__ = ["Slot", "plan", "workplace_key"]

"""Priority tiers an order may ask for, configured by the shop (BACKORDER_PRIORITY_TIERS),
highest first. The last is the default tier, rank 0; each tier above it ranks one higher, and
a SKU's queue serves higher ranks first (services/allocator/domain/ranks.py)."""

import re
from dataclasses import dataclass

TIER_NAME_LENGTH = 32  # the longest name a tier may have
TIER_PATTERN = rf"^[a-z][a-z0-9_-]{{0,{TIER_NAME_LENGTH - 1}}}$"


@dataclass(frozen=True)
class PriorityTiers:
    names: tuple[str, ...] = ("standard",)

    @classmethod
    def parse(cls, text: str) -> "PriorityTiers":
        names = tuple(name.strip() for name in text.split(","))
        for name in names:
            if not re.match(TIER_PATTERN, name):
                raise ValueError(f"tier {name!r} must match {TIER_PATTERN}")
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        return cls(names)

    @property
    def default(self) -> str:
        return self.names[-1]

    @property
    def top_rank(self) -> int:
        return len(self.names) - 1

    def rank_of(self, name: str | None) -> int | None:
        """The tier's rank (None: the default tier); None when the shop has no such tier."""
        if name is None:
            return 0
        if name not in self.names:
            return None
        return len(self.names) - 1 - self.names.index(name)

    def name_of(self, rank: int) -> str:
        return self.names[-1 - max(0, min(rank, self.top_rank))]

    def served(self, name: str | None) -> str:
        """The tier an order that asked for `name` waits in: the default one when it asked for
        none (or for a tier the shop no longer configures)."""
        return self.name_of(self.rank_of(name) or 0)

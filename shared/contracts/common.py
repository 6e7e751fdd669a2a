"""Event contracts: the JSON shapes on every topic, as pydantic models.

The bounds here are the input guarantees the README states: what is accepted fits every
table, topic and message this system writes; what is not is dead-lettered with the reason.
"""

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Longer waits or schedules are typing mistakes, and beyond some point dates overflow.
MAX_DURATION = timedelta(days=365)
# Line breaks and tabs are text; every other control character (NUL above all: PostgreSQL
# refuses it) and lone surrogates (not encodable) are refused.
_TEXT_LAYOUT = frozenset("\t\n\r")


def _refuse_control_characters(allowed: frozenset[str]) -> AfterValidator:
    def check(value: str) -> str:
        for char in value:
            if char not in allowed and unicodedata.category(char) in ("Cc", "Cs"):
                raise ValueError(f"control character U+{ord(char):04X} is not allowed")
        return value

    return AfterValidator(check)


Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    _refuse_control_characters(frozenset()),
]


# A line id an order is placed with: `~` is reserved for the lines a substitution adds
# (`<line_id>~<sku>`), so no placed line can take a substitute's id.
def _refuse_substitute_separator(value: str) -> str:
    if "~" in value:
        raise ValueError("'~' is reserved for the lines substitutions add")
    return value


PlacedLineId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    _refuse_control_characters(frozenset()),
    AfterValidator(_refuse_substitute_separator),
]
# A line a request names: a placed line, or a substitute, whose id adds the SKU (up to 64
# characters) and a swap count to its placed line's id.
LineReference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    _refuse_control_characters(frozenset()),
]
Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    _refuse_control_characters(frozenset()),
]
# Bounded so one message cannot reserve more than a warehouse ever holds or overflow a bigint sum.
Quantity = Annotated[int, Field(gt=0, le=1_000_000, strict=True)]
ShortText = Annotated[
    str, StringConstraints(max_length=500), _refuse_control_characters(_TEXT_LAYOUT)
]

# A line of offer text shown in delay notices: short enough for a subject-sized sentence, on
# one line (no layout characters) so it reads the same in a mail and in a webhook.
INCENTIVE_MAX_LENGTH = 200
IncentiveText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=INCENTIVE_MAX_LENGTH),
    _refuse_control_characters(frozenset()),
]


# A priority tier's name, as the shop configures its tiers (shared/priority.py).
PriorityTier = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_-]{0,31}$")
]


def _one_instant(value: datetime) -> datetime:
    """Aware, and in UTC: two writings of one instant are then equal, also as JSON."""
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_one_instant)]


def _bounded_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("duration must be positive")
    if value > MAX_DURATION:
        raise ValueError(f"duration must be at most {MAX_DURATION.days} days")
    return value


Duration = Annotated[timedelta, AfterValidator(_bounded_duration)]


class Contract(BaseModel):
    """Base of every message: unknown fields are tolerated, values are checked strictly."""

    model_config = ConfigDict(extra="ignore", frozen=True)

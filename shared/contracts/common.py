from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# Bounded so one message cannot reserve more than a warehouse ever holds or overflow a bigint sum.
Quantity = Annotated[int, Field(gt=0, le=1_000_000, strict=True)]
ShortText = Annotated[str, StringConstraints(max_length=500)]


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]


def _require_positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("duration must be positive")
    return value


Duration = Annotated[timedelta, AfterValidator(_require_positive)]


class Contract(BaseModel):
    """Base of every message: unknown fields are tolerated, values are checked strictly."""

    model_config = ConfigDict(extra="ignore", frozen=True)

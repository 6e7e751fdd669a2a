"""Priority tiers as a shop configures them and as orders and policies name them."""

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts.inputs import OrderPlaced, SkuPolicy
from shared.messaging.errors import poison_reason
from shared.priority import PriorityTiers
from shared.settings import Settings
from tests.unit.test_contracts import placed


def test_the_last_tier_is_the_default_and_each_tier_above_ranks_one_higher() -> None:
    tiers = PriorityTiers.parse("gold, silver,standard")
    assert tiers.default == "standard"
    assert [tiers.rank_of(name) for name in ("gold", "silver", "standard", None)] == [2, 1, 0, 0]
    assert tiers.rank_of("bronze") is None
    assert [tiers.name_of(rank) for rank in (0, 1, 2)] == ["standard", "silver", "gold"]
    assert tiers.top_rank == 2


def test_a_shop_that_sets_nothing_has_one_tier_and_nothing_to_promote() -> None:
    settings = Settings()
    assert settings.tiers == PriorityTiers(("standard",))
    assert settings.tiers.top_rank == 0
    assert settings.priority_aging is None


@pytest.mark.parametrize("text", ["vip,vip", "VIP,standard", "vip,,standard", "vip standard"])
def test_bad_tiers_stop_the_start(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("BACKORDER_PRIORITY_TIERS", text)
    with pytest.raises(ValidationError, match="priority_tiers"):
        Settings()


def test_aging_is_configured_as_a_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKORDER_PRIORITY_TIERS", "vip,standard")
    monkeypatch.setenv("BACKORDER_PRIORITY_AGING", "P2D")
    assert Settings().priority_aging == timedelta(days=2)


def test_an_order_may_name_a_tier_and_without_one_waits_in_the_default() -> None:
    assert OrderPlaced.model_validate(placed(priority="vip")).priority == "vip"
    assert OrderPlaced.model_validate(placed()).priority is None


@pytest.mark.parametrize(
    "priority", ["VIP", "", "x" * 33, 1, "v ip"], ids=["case", "empty", "long", "number", "space"]
)
def test_a_priority_that_cannot_be_a_tier_name_is_refused_with_the_field(priority: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        OrderPlaced.model_validate(placed(priority=priority))
    assert "priority" in (poison_reason(refused.value) or "")


def test_a_policy_may_set_its_own_aging_bound() -> None:
    policy = SkuPolicy.model_validate({"sku": "MUG", "backorders": "allow", "aging": "PT6H"})
    assert policy.aging == timedelta(hours=6)
    with pytest.raises(ValidationError, match="aging"):
        SkuPolicy.model_validate({"sku": "MUG", "backorders": "allow", "aging": "P400D"})

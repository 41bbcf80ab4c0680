"""A flagged MTurk bonus (its token forgotten, no payment listed) is sent again by a person, once, under a new
token, with a note in the audit trail; from the admin's bonus list, by ops managers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from tasks.models import CostKind, MTurkBonus, MTurkBonusState
from tasks.services.errors import ServiceError
from tasks.services.mturk_review import BonusNeedsReview, resend_flagged_bonus
from tasks.services.review import BonusNotConfirmed
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.mturk_fixtures import aws_env, mturk, standin, stubbed  # noqa: F401
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total
from tests.tasks.test_money_audit_fixes_bonus_token import SEND, _a_day_later, _pay, _submitted
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _flagged(mturk: MTurkMarketplace, standin: MTurkStandIn) -> MTurkBonus:  # noqa: F811
    (assignment,) = _submitted(mturk, standin)
    with standin.faults(FaultPlan(rate=1.0, kinds=("5xx",), operations=SEND)), pytest.raises(BonusNotConfirmed):
        _pay(assignment)
    _a_day_later(standin, "b1")
    with pytest.raises(BonusNeedsReview):
        _pay(assignment)
    return MTurkBonus.objects.select_related("assignment__hit", "job", "worker").get(idempotency_key="b1")


def test_a_flagged_bonus_is_sent_again_once_under_a_new_token(mturk, standin) -> None:  # noqa: F811
    bonus = _flagged(mturk, standin)
    old_token = bonus.token
    with pytest.raises(ServiceError, match="Say what you checked"):
        resend_flagged_bonus(bonus=bonus, actor=ACTOR, note=" ", connector=mturk)
    sent = resend_flagged_bonus(bonus=bonus, actor=ACTOR, note="no bonus on the requester site", connector=mturk)
    assert sent.state == MTurkBonusState.SENT and sent.token != old_token
    assert len(standin.state.bonuses) == 1
    assert ledger_total(kind=CostKind.BONUS) == Decimal("1.00")
    event = AuditEvent.objects.get(action="mturk.bonus_resent")
    assert event.before == {"token": old_token} and event.reason == "no bonus on the requester site"
    with pytest.raises(ServiceError, match="already sent"):
        resend_flagged_bonus(bonus=sent, actor=ACTOR, note="again", connector=mturk)
    assert len(standin.state.bonuses) == 1


def test_a_bonus_still_within_its_token_day_is_not_sent_under_a_new_token(mturk, standin) -> None:  # noqa: F811
    (assignment,) = _submitted(mturk, standin)
    with standin.faults(FaultPlan(rate=1.0, kinds=("5xx",), operations=SEND)), pytest.raises(BonusNotConfirmed):
        _pay(assignment)
    bonus = MTurkBonus.objects.get(idempotency_key="b1")
    with pytest.raises(ServiceError, match="less than a day old"):
        resend_flagged_bonus(bonus=bonus, actor=ACTOR, note="checked", connector=mturk)
    assert standin.state.bonuses == []


def test_ops_managers_send_it_again_from_the_bonus_list(
    mturk,  # noqa: F811
    standin,  # noqa: F811
    ops_manager: Any,
    login_client: Any,
    settings: Any,
) -> None:
    bonus = _flagged(mturk, standin)
    client = login_client(ops_manager)
    changelist = reverse("admin:tasks_mturkbonus_changelist")
    page = client.get(changelist).content.decode()
    assert "resend_flagged" in page and "What you checked" in page
    form = {"action": "resend_flagged", "_selected_action": [bonus.pk], "note": "nothing listed on MTurk"}
    response = client.post(changelist, form, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["b1: Sent."]
    assert MTurkBonus.objects.get(pk=bonus.pk).state == MTurkBonusState.SENT
    assert len(standin.state.bonuses) == 1

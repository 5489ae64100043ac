"""IG's objection queue: which cases need action, and each open case's age against the response target.

The target (settings.OPTOUT_RESPONSE_DAYS) is counted in calendar days in Europe/London, as a letter would put it:
received on 2 Nov with a 30-day target, due on 2 Dec, overdue from 3 Dec. The "overdue" list and the age shown
beside each case use the same count, so a case is never listed as overdue while its row says it is due.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from .models import Objection

Status = Objection.Status
# Not yet answered: the requester is waiting for IG's decision.
AWAITING_DECISION = (Status.RECEIVED, Status.VERIFIED)


def needs_action(queryset):
    return queryset.filter(status__in=AWAITING_DECISION)


def overdue(queryset, *, today=None):
    """Cases awaiting a decision for longer than the response target."""
    today = today or timezone.localdate()
    first_day_in_time = today - datetime.timedelta(days=settings.OPTOUT_RESPONSE_DAYS)
    start = timezone.make_aware(datetime.datetime.combine(first_day_in_time, datetime.time.min))
    return needs_action(queryset).filter(received_at__lt=start)


def _days(count):
    return "1 day" if count == 1 else f"{count} days"


@dataclass(frozen=True)
class Age:
    days: int  # calendar days since the case was received
    days_left: int | None  # to the response target (negative: overdue); None once the case is decided

    def __str__(self):
        age = "Received today" if self.days == 0 else _days(self.days)
        if self.days_left is None:
            return age
        if self.days_left < 0:
            return f"{age} — overdue by {_days(-self.days_left)}"
        if self.days_left == 0:
            return f"{age} — due today"
        return f"{age} — due in {_days(self.days_left)}"


def age_of(objection, *, today=None) -> Age:
    """How old the case is and, while it awaits a decision, how long is left to the response target."""
    today = today or timezone.localdate()
    days = (today - timezone.localdate(objection.received_at)).days
    waiting = objection.status in AWAITING_DECISION
    return Age(days, settings.OPTOUT_RESPONSE_DAYS - days if waiting else None)

"""IG's review queues in sharing: which break glass and which care relationships still need a look. The admin's
queue filters and the dashboard's counts both read these, so a tile's count is what its queue lists."""

from django.db.models import Q
from django.utils import timezone

from .models import BreakGlass

# Asserted by a partner system (an API token) and not yet reviewed by IG.
UNREVIEWED = Q(asserted_by_token__isnull=False, reviewed_at__isnull=True)
# Break glass never reviewed, or reviewed as needing a follow-up.
NEEDS_REVIEW = (BreakGlass.Outcome.PENDING, BreakGlass.Outcome.FOLLOW_UP)


def review_overdue(now):
    """Current relationships past their review date."""
    current = Q(started_at__lte=now) & (Q(ended_at__isnull=True) | Q(ended_at__gt=now))
    return current & Q(review_on__lt=timezone.localdate(now))

"""The public list of partners and what each shares (no sign-in): sharing agreements, published."""

from django.contrib.auth.decorators import login_not_required
from django.db.models import Prefetch, Q
from django.shortcuts import render

from directory.models import Organisation

from .models import SharingAgreement


@login_not_required
def partners(request):
    """Every connected organisation, grouped by kind then region, with the categories each shares.

    Only organisations IG created or approved (`listed`): one a feed added on a sender's word is not shown."""
    query = request.GET.get("q", "").strip()[:100]
    organisations = Organisation.objects.filter(active=True, listed=True).prefetch_related(
        Prefetch(
            "sharing_agreements",
            queryset=SharingAgreement.objects.filter(shares=True).order_by("category"),
            to_attr="shared",
        )
    )
    if query:
        organisations = organisations.filter(Q(name__icontains=query) | Q(ods_code__iexact=query))
    kinds = []
    for kind in Organisation.Kind:
        members = sorted((o for o in organisations if o.kind == kind), key=lambda o: (o.region, o.name))
        if members:
            kinds.append({"kind": kind, "organisations": members})
    return render(
        request,
        "optout/partners.html",
        {"kinds": kinds, "query": query, "count": sum(len(k["organisations"]) for k in kinds)},
    )

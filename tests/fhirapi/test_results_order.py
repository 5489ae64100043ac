"""Results do not depend on message order: the UK Core lab report, its full blood count panel and the panel's two
members, sent in every order over every number of requests (each of the 75 ordered partitions of the four),
reach exactly the rows one bundle holding all four gives; re-sending any of them, or all, then changes nothing.

Before, the second send "created" the panel again and deleted two results, and a member sent after its report
stood alone for good (H-14); members moved between Results could be lost (H-05)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fhirapi.models import ResultLink
from patients.models import Observation, Result

from .conftest import RICHARD_SMITH, bundle, example, example_resource, import_bytes, import_json

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-14"), pytest.mark.hazard("H-05")]

REPORT = "DiagnosticReport/UKCore-DiagnosticReport-Lab-DiagnosticStudiesReport-Example"
PANEL = "Observation/UKCore-Observation-Group-FullBloodCount-Example"
WHITE = "Observation/UKCore-Observation-Lab-WhiteCellCount-Example"
RED = "Observation/UKCore-Observation-Lab-RedCellCount-Example"
FILES = {
    REPORT: "UKCore-DiagnosticReport-Lab-DiagnosticStudiesReport-Example.xml",
    PANEL: "UKCore-Observation-Group-FullBloodCount-Example.xml",
    WHITE: "UKCore-Observation-Lab-WhiteCellCount-Example.xml",
    RED: "UKCore-Observation-Lab-RedCellCount-Example.xml",
}
# The members carry no date of their own: they keep none (the page shows their report's).
VALUES = frozenset(
    {
        (WHITE, "White blood cell count in fluid", Decimal("11.2"), "10*9/L", None),
        (RED, "Nucleated red blood cell count in blood", Decimal("3.9"), "10*12/L", None),
    }
)
ONE_REPORT = {(REPORT, Result.Kind.REPORT, datetime(2023, 1, 13, 14, 53, 23, tzinfo=UTC), VALUES)}
# A panel in no report is an Observation: held as a Result of kind "observation", keyed by its own id.
ONE_PANEL = {(PANEL, Result.Kind.OBSERVATION, None, VALUES)}


def ordered_partitions(items: list) -> list[list[list]]:
    """Every way to send `items` as a sequence of requests: each ordered partition into non-empty groups."""
    if not items:
        return [[]]
    head, rest = items[0], items[1:]
    found = []
    for partition in ordered_partitions(rest):
        for index in range(len(partition)):  # with an existing request
            found.append([*partition[:index], [head, *partition[index]], *partition[index + 1 :]])
        for index in range(len(partition) + 1):  # as a request of its own, anywhere in the sequence
            found.append([*partition[:index], [head], *partition[index:]])
    return found


def request(keys):
    return bundle("batch", *(example_resource(FILES[key]) for key in keys))


def held(organisation) -> set:
    """(result source_id, kind, date, {(observation source_id, name, value, unit, date)}) for every Result."""
    return {
        (
            result.source_id,
            result.kind,
            result.effective_at,
            frozenset((o.source_id, o.name, o.value, o.unit, o.effective_at) for o in result.observations.all()),
        )
        for result in Result.objects.filter(source_organisation=organisation).prefetch_related("observations")
    }


def rows():
    """Every row's id: a re-send that deletes and re-creates rows changes these even when the content is equal."""
    return (
        set(Result.objects.values_list("pk", "source_id")),
        set(Observation.objects.values_list("pk", "source_id", "result_id")),
        set(ResultLink.objects.values_list("pk", "parent", "child")),
    )


def send(keys, sender):
    report = import_json(request(keys), sender)
    return {outcome.key: outcome.status for outcome in report.outcomes}, report


def assert_resending_changes_nothing(keys, sender):
    before = rows()
    for group in [[key] for key in keys] + [list(keys)]:
        statuses, report = send(group, sender)
        assert set(statuses.values()) == {"unchanged"}, (group, statuses, [o.issues for o in report.outcomes])
    assert rows() == before


LAB = [REPORT, PANEL, WHITE, RED]
NAMES = {REPORT: "report", PANEL: "panel", WHITE: "white", RED: "red"}


def order_id(order) -> str:
    """e.g. "red|report+panel|white": three requests, the second holding two resources."""
    return "|".join("+".join(NAMES[key] for key in group) for group in order)


LAB_ORDERS = ordered_partitions(LAB)
PANEL_ORDERS = ordered_partitions([PANEL, WHITE, RED])


def test_the_orders_are_every_ordered_partition():
    assert len(LAB_ORDERS) == 75 and len(PANEL_ORDERS) == 13  # Fubini numbers
    assert len({tuple(map(tuple, order)) for order in LAB_ORDERS}) == 75


def test_one_bundle_gives_one_report_holding_the_panels_members(sender):
    import_bytes(example(RICHARD_SMITH), sender)
    statuses, _ = send(LAB, sender)
    assert set(statuses.values()) == {"created"}
    assert held(sender) == ONE_REPORT
    assert_resending_changes_nothing(LAB, sender)


@pytest.mark.parametrize("order", LAB_ORDERS, ids=order_id)
def test_any_order_over_any_number_of_requests_reaches_the_one_bundle_rows(order, sender):
    import_bytes(example(RICHARD_SMITH), sender)
    for group in order:
        statuses, report = send(group, sender)
        assert not report.errors and set(statuses.values()) <= {"created", "updated"}, statuses
    assert held(sender) == ONE_REPORT
    assert_resending_changes_nothing(LAB, sender)


@pytest.mark.parametrize("order", PANEL_ORDERS, ids=order_id)
def test_a_panel_in_no_report_holds_its_members_in_any_order(order, sender):
    import_bytes(example(RICHARD_SMITH), sender)
    for group in order:
        _, report = send(group, sender)
        assert not report.errors
    assert held(sender) == ONE_PANEL
    assert_resending_changes_nothing([PANEL, WHITE, RED], sender)


def test_a_member_sent_after_its_report_and_panel_joins_the_report_not_a_result_of_its_own(sender):
    """The issue's case: report, panel, then members, each alone; one more send of each must change nothing."""
    import_bytes(example(RICHARD_SMITH), sender)
    assert send([REPORT], sender)[0] == {REPORT: "created"}
    assert send([PANEL], sender)[0] == {PANEL: "created"}
    assert send([WHITE], sender)[0] == {WHITE: "created"}
    assert send([RED], sender)[0] == {RED: "created"}
    assert held(sender) == ONE_REPORT
    for key in LAB:
        assert send([key], sender)[0] == {key: "unchanged"}
    assert held(sender) == ONE_REPORT


def test_a_report_arriving_last_adopts_a_standalone_panel_and_removes_its_result(sender):
    import_bytes(example(RICHARD_SMITH), sender)
    send([PANEL, WHITE, RED], sender)
    assert held(sender) == ONE_PANEL
    statuses, _ = send([REPORT], sender)
    assert statuses == {REPORT: "created"}
    assert held(sender) == ONE_REPORT  # the panel's own Result is gone, its values kept under the report
    assert not Result.objects.filter(source_id=PANEL).exists()


def test_an_older_version_of_a_report_changes_none_of_its_links(sender):
    import_bytes(example(RICHARD_SMITH), sender)
    newer = {**example_resource(FILES[REPORT]), "meta": {"lastUpdated": "2024-02-01T00:00:00Z"}}
    older = {**newer, "meta": {"lastUpdated": "2024-01-01T00:00:00Z"}, "result": [{"reference": WHITE}]}
    import_json(newer, sender)
    send([PANEL, WHITE, RED], sender)
    report = import_json(older, sender)
    assert report.outcomes[0].stale
    assert held(sender) == ONE_REPORT
    assert set(ResultLink.objects.values_list("parent", "child")) == {(REPORT, PANEL), (PANEL, WHITE), (PANEL, RED)}


def test_links_are_kept_per_sending_organisation(sender, organisation):
    """Another organisation's ids are its own: its report listing the same ids adopts none of these values."""
    import_bytes(example(RICHARD_SMITH), sender)
    send([PANEL, WHITE, RED], sender)
    import_bytes(example(RICHARD_SMITH), organisation)
    import_json(request([REPORT]), organisation)
    assert held(sender) == ONE_PANEL
    assert [(r.source_id, r.observations.count()) for r in Result.objects.filter(source_organisation=organisation)] == [
        (REPORT, 0)
    ]


def test_a_member_a_later_report_version_drops_stands_alone_once_it_is_sent_again(sender):
    """The link goes with the new version; the value already held is not dropped, and comes out of the report
    (into a Result of its own) when its Observation is next sent."""
    import_bytes(example(RICHARD_SMITH), sender)
    report = example_resource(FILES[REPORT])
    white = example_resource(FILES[WHITE])
    import_json(bundle("batch", {**report, "result": [{"reference": WHITE}]}, white), sender)
    assert Result.objects.get().observations.count() == 1
    revised = {**report, "result": [], "conclusion": "Sample haemolysed: repeat requested."}
    assert send_resource(revised, sender) == "updated"
    assert not ResultLink.objects.exists()
    assert Result.objects.get(source_id=REPORT).observations.count() == 1  # kept, not silently dropped
    assert send_resource(white, sender) == "created"  # its own Result, new
    assert Result.objects.get(source_id=REPORT).observations.count() == 0
    alone = Result.objects.get(source_id=WHITE)
    assert (alone.kind, [o.name for o in alone.observations.all()]) == (
        "observation",
        ["White blood cell count in fluid"],
    )


def send_resource(resource, sender) -> str:
    [outcome] = import_json(resource, sender).outcomes
    return outcome.status


def test_an_older_report_sent_with_its_values_changes_none_of_the_values_held(sender):
    """A preliminary report arriving after its final (an older meta.lastUpdated), its values in the same bundle:
    the final's values stay. Before, the report was kept but the values inside it were replaced by the older ones."""
    import_bytes(example(RICHARD_SMITH), sender)
    report = example_resource(FILES[REPORT])
    white = example_resource(FILES[WHITE])
    final = {
        **report,
        "status": "final",
        "meta": {"lastUpdated": "2024-02-01T00:00:00Z"},
        "result": [{"reference": WHITE}],
    }
    preliminary = {**final, "status": "preliminary", "meta": {"lastUpdated": "2024-01-01T00:00:00Z"}}
    older_white = {**white, "valueQuantity": {**white["valueQuantity"], "value": 99.9}}
    import_json(bundle("transaction", final, white), sender)
    late = import_json(bundle("transaction", preliminary, older_white), sender)
    assert late.outcomes[0].stale
    held_report = Result.objects.get(source_id=REPORT)
    assert held_report.status == "final"
    assert [o.value for o in held_report.observations.all()] == [Decimal("11.2")]

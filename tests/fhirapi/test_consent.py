"""Issue 13: a Consent that objects to sharing opens an objection in IG's queue as received, never upheld by a feed
(fhirapi/mapping/consent.py, optout.actions.receive_partner_objection); any other Consent is kept as sent and not
acted on."""

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.names import Action
from fhirapi.models import ReceivedResource
from optout import actions
from optout.models import Objection
from sharing.access import decide
from tests import factories

from .conftest import bundle, example, example_resource, import_bytes, import_json, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-02")]

SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"


@pytest.fixture
def ours(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


def consent(resource_id="c1", provision_type="deny", status="active", scope="patient-privacy", **extra):
    return {
        "resourceType": "Consent",
        "id": resource_id,
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Patient objects to the shared care record.</div>',
        },
        "status": status,
        "scope": {"coding": [{"system": SCOPE, "code": scope}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "dateTime": "2026-03-01T10:00:00Z",
        "performer": [{"reference": "Practitioner/dr1", "display": "Dr Paul Rastall"}],
        "provision": {"type": provision_type},
        **extra,
    }


def imported(resource, sender):
    [outcome] = import_json(resource, sender).outcomes
    return outcome


def test_a_consent_denying_sharing_opens_a_received_objection_matched_to_the_patient(sender, ours):
    outcome = imported(consent(), sender)
    assert outcome.status == "created" and not [issue for issue in outcome.issues if issue.is_error]
    assert "passed to information governance as received" in outcome.issues[0].diagnostics
    objection = Objection.objects.get()
    assert (objection.status, objection.source, objection.patient_id) == ("received", "partner-feed", ours.pk)
    assert (objection.nhs_number, objection.family_name, objection.region) == (
        ours.nhs_number,
        ours.family_name,
        sender.region,
    )
    assert objection.how_told == (
        f"Sent by {sender.name} ({sender.ods_code}) as FHIR Consent/c1, dated 01 Mar 2026, recorded by Dr Paul Rastall"
    )
    assert objection.reason == "Patient objects to the shared care record."
    assert objection.decided_by is None and objection.decided_at is None


def test_a_feed_never_upholds_it_the_record_is_shared_until_ig_do(sender, ours, clinician, other_organisation):
    factories.ConditionFactory(patient=ours, source_organisation=other_organisation)
    imported(consent(), sender)
    assert not decide(clinician, ours).opted_out  # received: nothing changes yet
    imported(consent(status="inactive"), sender)  # nor can a feed take it back
    objection = Objection.objects.get()
    assert objection.status == "received"
    actions.verify(by=None, objection=objection, identity_check="documents")
    actions.uphold(by=None, objection=objection)
    assert decide(clinician, ours).opted_out  # IG's decision, as for any other objection


def test_ig_work_it_in_admin_as_any_other(sender, ours, ig_client):
    imported(consent(), sender)
    objection = Objection.objects.get()
    page = ig_client.get(reverse("admin:optout_objection_change", args=[objection.pk])).content.decode()
    assert "Sent by a partner system (FHIR Consent)" in page and "Dr Paul Rastall" in page
    ig_client.post(reverse("admin:optout_objection_verify", args=[objection.pk]), {"identity_check": "documents"})
    objection.refresh_from_db()
    assert objection.status == "verified"


def test_opening_it_is_audited_naming_the_partner_system(api, sender, sender_token, ours):
    response = api.post("/fhir/Consent", consent(), token=sender_token)
    assert response.status_code == 201, response.content
    objection = Objection.objects.get()
    [opened] = AuditEvent.objects.filter(action=Action.OBJECTION_RECEIVED)
    assert opened.actor_id is None and opened.actor_email.startswith("api-token:")
    assert opened.actor_email.endswith(f"@{sender.ods_code}")
    assert (opened.target_id, opened.patient_id) == (str(objection.pk), ours.pk)
    assert opened.detail == {"source": "partner-feed", "organisation": sender.ods_code, "statement": "Consent/c1"}


def test_re_sending_the_same_consent_opens_no_second_objection(sender, ours):
    assert imported(consent(), sender).status == "created"
    assert imported(consent(), sender).status == "unchanged"
    changed = consent(text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Again.</div>'})
    assert imported(changed, sender).status == "updated"  # a new version kept, still the one case
    objection = Objection.objects.get()
    actions.reject(by=None, objection=objection, reason="The patient told us they did not object.")
    assert imported(consent(), sender).status == "updated"  # after IG's decision too: the same statement
    assert Objection.objects.count() == 1
    assert ReceivedResource.objects.filter(resource_type="Consent").count() == 3  # every version kept


def test_a_patient_with_an_open_case_gets_no_second_and_the_sender_is_told_the_same(sender, ours):
    actions.record_professional_objection(by=None, patient=ours, reason="", how_told="In clinic", region="NCL")
    first = imported(consent(), sender)
    assert Objection.objects.count() == 1
    Objection.objects.all().delete()
    second = imported(consent("c2"), sender)
    assert Objection.objects.get().source == "partner-feed"
    # The same answer whether or not a case was opened: the sender learns nothing of other cases.
    assert (first.status, first.issues[0].diagnostics.replace("c1", "c2")) == (
        second.status,
        second.issues[0].diagnostics,
    )


def test_a_deny_limited_to_some_recipients_is_opened_and_says_so(sender, ours):
    imported(
        consent(
            provision={"type": "deny", "actor": [{"role": {"text": "recipient"}, "reference": {"display": "CAMHS"}}]}
        ),
        sender,
    )
    assert "limits its objection" in Objection.objects.get().reason


def test_a_relative_acting_for_the_patient_is_named(sender, ours):
    imported(consent(performer=[{"reference": "RelatedPerson/rp1", "display": "Joy Smith"}]), sender)
    objection = Objection.objects.get()
    assert objection.on_behalf_name == "Joy Smith" and "recorded by" not in objection.how_told


@pytest.mark.parametrize(
    "resource, why",
    [
        (consent(provision_type="permit"), "does not deny sharing"),
        (consent(provision_type=None), "does not deny sharing"),
        (consent(status="inactive"), "status is inactive"),
        (consent(status="draft"), "status is draft"),
        (consent(status="entered-in-error"), "status is entered-in-error"),
        (consent(scope="treatment"), "not a privacy consent"),
        (
            consent(provision={"type": "deny", "purpose": [{"system": ACT_REASON, "code": "HRESCH"}]}),
            "purposes other than direct care",
        ),
        (
            consent(
                provision={"type": "deny", "action": [{"coding": [{"system": CONSENT_ACTION, "code": "collect"}]}]}
            ),
            "not access to, use or disclosure",
        ),
        (consent(provision={"type": "deny", "period": {"end": "2020-01-01"}}), "provision ended"),
    ],
    ids=["permit", "no-rule", "inactive", "draft", "entered-in-error", "treatment", "research", "collect", "ended"],
)
def test_any_other_consent_is_kept_as_sent_and_not_acted_on(resource, why, sender, ours):
    outcome = imported(resource, sender)
    assert outcome.status == "created"
    [issue] = outcome.issues
    assert (issue.severity, issue.code) == ("information", "not-supported")
    assert "kept as sent, not acted on" in issue.diagnostics and why in issue.diagnostics
    assert not Objection.objects.exists()
    assert ReceivedResource.objects.filter(resource_type="Consent", resource_id="c1").exists()


def test_a_direct_care_deny_with_research_too_is_an_objection(sender, ours):
    purposes = [{"system": ACT_REASON, "code": "HRESCH"}, {"system": ACT_REASON, "code": "TREAT"}]
    imported(consent(provision={"type": "deny", "purpose": purposes}), sender)
    assert Objection.objects.count() == 1


@pytest.mark.hazard("H-06")
def test_a_consent_for_a_patient_not_sent_is_refused_and_opens_nothing(sender):
    outcome = imported(consent(), sender)
    assert outcome.status == "rejected" and outcome.issues[0].code == "not-found"
    assert outcome.issues[0].expression == "Consent.patient"
    assert not Objection.objects.exists()


def test_a_transaction_that_fails_opens_nothing(sender, ours):
    broken = {"resourceType": "Condition", "id": "x", "subject": {"reference": "Patient/nobody"}}
    report = import_json(bundle("transaction", consent(), broken), sender)
    assert not report.applied
    assert not Objection.objects.exists() and not AuditEvent.objects.filter(action=Action.OBJECTION_RECEIVED)


def test_the_uk_core_consent_for_information_access_is_kept_not_acted_on(sender, patient):
    import_bytes(example("UKCore-Patient-RichardSmith-Example.xml"), sender)
    outcome = imported(example_resource("UKCore-Consent-ForInformationAccess-Example.xml"), sender)
    assert outcome.status == "created"
    assert "does not deny sharing" in outcome.issues[0].diagnostics
    assert not Objection.objects.exists()
    assert json.dumps(ReceivedResource.objects.get(resource_type="Consent").json).count("patient-privacy") == 1

"""Later versions of a resource, for "what changed since you last looked" (sharing.changes): registered with
sharing at start-up (FhirApiConfig.ready), as sharing sits below fhirapi and cannot import it."""

from .models import ReceivedResource


def revised_since(patient_id, since):
    """((organisation id, "Type/id"), received at) of each version numbered 2 or more of the patient's resources
    received after `since`. One query on the patient's kept versions."""
    rows = ReceivedResource.objects.filter(patient_id=patient_id, version__gt=1, received_at__gt=since).values_list(
        "organisation_id", "resource_type", "resource_id", "received_at"
    )
    for organisation_id, resource_type, resource_id, received_at in rows:
        yield (organisation_id, f"{resource_type}/{resource_id}"), received_at

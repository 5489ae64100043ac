from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patient records"

    def ready(self):
        from audit import subjects

        from .models import Patient
        from .nhs_numbers import looks_like_nhs_number, normalise

        def nhs_number_in(term):
            digits = normalise(term)
            return digits if looks_like_nhs_number(digits) else None

        subjects.register(
            nhs_number_in=nhs_number_in,
            patient_id_for=lambda nhs_number: (
                Patient.objects.filter(nhs_number=nhs_number).values_list("pk", flat=True).first()
            ),
            patient=lambda patient_id: Patient.objects.filter(pk=patient_id).first(),
        )

"""Break glass: a coded reason, free text when the code is 'Other', and an explicit confirmation."""

from django import forms

from sharing.models import BreakGlass


class BreakGlassForm(forms.Form):
    reason_code = forms.ChoiceField(
        label="Why do you need emergency access?",
        choices=BreakGlass.ReasonCode.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select why you need emergency access."},
    )
    reason_text = forms.CharField(
        label="Give details",
        help_text="Required when the reason is 'Other'. This is reviewed by information governance.",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        required=False,
    )
    confirm = forms.BooleanField(
        label="I confirm I need this record to care for the patient now, and that my access will be reviewed.",
        error_messages={"required": "Confirm that you need emergency access and that it will be reviewed."},
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason_code") == BreakGlass.ReasonCode.OTHER and not cleaned.get("reason_text", "").strip():
            self.add_error("reason_text", "Give the reason you need emergency access.")
        return cleaned

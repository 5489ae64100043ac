"""Report a problem with an entry: what looks wrong, in the professional's words (it is emailed to the source)."""

from django import forms

WHAT_IS_WRONG_MAX = 2000


class EntryProblemForm(forms.Form):
    what_is_wrong = forms.CharField(
        label="What looks wrong?",
        help_text="Say what looks wrong and, if you know, what it should say. This is sent to the organisation the "
        "entry came from, with the patient's NHS number: do not include other patient details unless they are "
        "needed to put it right.",
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=WHAT_IS_WRONG_MAX,
        error_messages={
            "required": "Enter what looks wrong with the entry",
            "max_length": f"What looks wrong must be {WHAT_IS_WRONG_MAX:,} characters or fewer",
        },
    )

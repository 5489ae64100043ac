"""NHS.UK design system form helpers: inputs with the right classes and ARIA, and error summary items."""

from django import forms, template
from django.forms.forms import NON_FIELD_ERRORS

register = template.Library()

_GENERIC_REQUIRED = str(forms.Field.default_error_messages["required"])


@register.filter
def first_error(field):
    """A field's first error message, made specific when a text input has Django's generic "This field is
    required." (as in allauth's forms): "Enter current password". Use it inline and in the summary alike."""
    if not field.errors:
        return ""
    message = str(field.errors[0])
    typed = field.widget_type in {"text", "email", "password", "number", "tel", "url", "search", "textarea"}
    if message == _GENERIC_REQUIRED and typed and field.label:
        return f"Enter {str(field.label).lower()}"
    return message


@register.simple_tag
def nhsuk_input(field, classes="", **attrs):
    """Render a form field's widget as an NHS.UK input.

    Adds `nhsuk-input` (and `nhsuk-input--error` when the field has errors), points aria-describedby at the
    hint and error message rendered by `_components/input.html`, and drops placeholders (the NHS.UK
    service manual advises against them). Extra attributes: underscores become hyphens (`aria_label=`);
    empty values are ignored.
    """
    css = ["nhsuk-input", *classes.split()]
    if field.errors:
        css.append("nhsuk-input--error")
    described_by = []
    if field.help_text:
        described_by.append(f"{field.auto_id}-hint")
    if field.errors:
        described_by.append(f"{field.auto_id}-error")
    widget_attrs = {"class": " ".join(css), "placeholder": False}
    if described_by:
        widget_attrs["aria-describedby"] = " ".join(described_by)
    # Unset template variables arrive as "" (or None): they add nothing, so the widget's own attributes
    # (e.g. allauth's autocomplete="current-password") stay.
    widget_attrs.update({name.replace("_", "-"): value for name, value in attrs.items() if value not in (None, "")})
    return field.as_widget(attrs=widget_attrs)


@register.simple_tag
def form_errors(form, **anchors_by_code):
    """Items for the error summary, [{"href": "#field-id", "text": message}, ...], in the page's order.

    Field errors link to their field. A non-field error links to the field id given for its error code
    (e.g. `{% form_errors name_form dob="id_dob_day" as errors %}`) and is listed where that field is;
    otherwise it links to the form's first field and is listed first.
    """
    if not form.is_bound:
        return []
    ids = [field.auto_id for field in form.visible_fields()]
    ranked = []
    for error in form.non_field_errors().as_data():
        anchor = anchors_by_code.get(error.code)
        position = ids.index(anchor) if anchor in ids else -1
        for message in error.messages:
            ranked.append((position, {"href": f"#{anchor or (ids[0] if ids else '')}", "text": message}))
    for name, _errors in form.errors.items():
        if name != NON_FIELD_ERRORS and name in form.fields:
            field_id = form[name].auto_id
            position = ids.index(field_id) if field_id in ids else len(ids)
            ranked.append((position, {"href": f"#{field_id}", "text": first_error(form[name])}))
    return [item for _, item in sorted(ranked, key=lambda pair: pair[0])]

"""How the letter page names a letter's attachment: `{{ entry.attachment_type|attachment_label }}` ("PDF") and
whether it opens in the browser (`|opens_inline`: a PDF) or downloads. The rules are sharing.attachments'."""

from django import template

from sharing import attachments

register = template.Library()


@register.filter
def attachment_label(content_type) -> str:
    return attachments.label(content_type)


@register.filter
def opens_inline(content_type) -> bool:
    return attachments.opens_inline(content_type)

"""Whoever switches a sign-in account off (Django's user admin, a shell, `directory.actions.deactivate_user`),
its sessions end and its API tokens are revoked in the same transaction, audited (`actions.end_access`).

The user admin names who did it (directory/admin.py sets `_carerecord_changed_by`); elsewhere the row's actor
is whoever the caller says, or nobody.
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from . import actions


def remember_whether_active(sender, instance, update_fields=None, **kwargs):
    """Before saving an inactive account: was it active until now? (One query, only then.)"""
    untouched = update_fields is not None and "is_active" not in update_fields
    if instance.pk is None or instance.is_active or untouched:
        instance._carerecord_was_active = None
        return
    instance._carerecord_was_active = sender.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()


def end_access_when_deactivated(sender, instance, created, **kwargs):
    if created or instance.is_active or not getattr(instance, "_carerecord_was_active", None):
        return
    actions.end_access(
        by=getattr(instance, "_carerecord_changed_by", None),
        target=instance,
        user_ids=[instance.pk],
        reason="account-deactivated",
    )


def connect():
    user_model = get_user_model()
    pre_save.connect(remember_whether_active, sender=user_model, dispatch_uid="directory.remember_whether_active")
    post_save.connect(end_access_when_deactivated, sender=user_model, dispatch_uid="directory.end_access")

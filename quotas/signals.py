"""Every organization has its quota row from the moment it exists (accounts does not know quotas)."""
from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Organization
from quotas.models import Quota


@receiver(post_save, sender=Organization, dispatch_uid="quotas.organization_quota")
def organization_quota(sender, instance: Organization, created: bool, **kwargs) -> None:  # noqa: ANN001, ANN003
    if created:
        Quota.objects.get_or_create(organization=instance)

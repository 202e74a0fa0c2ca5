"""Changes that alter what an API key may do make every process drop its cached keys (accounts/keycache.py)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from accounts.keycache import auth_version_bump
from accounts.models import ApiKey, Membership, Organization


def _changed(sender, **kwargs) -> None:  # noqa: ANN001, ANN003 - a signal receiver
    if kwargs.get("created") and sender is not Membership:
        return  # a new key, user or organization is in no cache yet
    auth_version_bump()


def connect() -> None:
    plan = Organization.plan.field.related_model  # quotas' Plan, through the foreign key (no upward import)
    for model in (ApiKey, Membership, Organization, plan, get_user_model()):
        post_save.connect(_changed, sender=model, dispatch_uid=f"keycache-save-{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"keycache-delete-{model._meta.label}")

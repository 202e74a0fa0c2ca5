"""The web app's forms: they parse what a person typed; every rule stays in the services."""
from __future__ import annotations

from datetime import datetime, time, timezone

from django import forms

from media_app.models import MediaFile
from media_app.selectors import media_cursor_decode

ANY = [("", "Any")]
LINK_LIFETIMES = [(300, "5 minutes"), (3600, "1 hour"), (86400, "1 day"), (604800, "7 days")]


class GalleryFilters(forms.Form):
    """The gallery's filters and prompt search; bad values are dropped, not refused (a page, not an API)."""

    search = forms.CharField(required=False, max_length=200, label="Search prompts")
    media = forms.ChoiceField(required=False, choices=ANY + list(MediaFile.Kind.choices), label="Kind")
    model = forms.CharField(required=False, max_length=200)
    provider = forms.CharField(required=False, max_length=100)
    visibility = forms.ChoiceField(required=False, choices=ANY + list(MediaFile.Visibility.choices))
    category = forms.ChoiceField(required=False, choices=ANY + list(MediaFile.Category.choices))
    user = forms.CharField(required=False, max_length=150, label="Member")
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def clean_cursor(self) -> tuple[datetime, str] | None:
        if not self.cleaned_data["cursor"]:
            return None
        try:
            return media_cursor_decode(self.cleaned_data["cursor"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid_cursor") from None


class SignedLinkForm(forms.Form):
    ttl = forms.TypedChoiceField(choices=LINK_LIFETIMES, coerce=int, initial=3600, label="Valid for")


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(choices=MediaFile.Visibility.choices)


class RetentionForm(forms.Form):
    """A day to keep the file until (end of that day, UTC), or forever when the plan allows."""

    retain_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                   label="Keep until")
    forever = forms.BooleanField(required=False, label="Keep forever")

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("forever") and data.get("retain_until") is None:
            raise forms.ValidationError("Pick a day or keep forever.", code="required")
        return data

    def until(self) -> datetime | None:
        day = self.cleaned_data.get("retain_until")
        if self.cleaned_data.get("forever") or day is None:
            return None
        return datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Key name")


class OrganizationForm(forms.Form):
    organization = forms.IntegerField()
    next = forms.CharField(required=False, max_length=500)

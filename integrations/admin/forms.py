"""Admin forms for the recovery actions. Times and durations read exactly as the runbook commands read them."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from integrations import timespec
from integrations.models import ErrorCategory, Integration
from integrations.services.onboarding import validate_integration_shape
from integrations.services.recovery import (
    DEFAULT_RESOLUTION,
    MAX_POLL_INTERVAL,
    MAX_SAMPLE_SIZE,
    MAX_WEBHOOK_RETRIES,
    MIN_POLL_INTERVAL,
)

TEXT = {"size": 30}


class SinceField(forms.CharField):
    """'N minutes/hours/days ago' or an ISO time, in the past; cleans to an aware datetime."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "e.g. '1 hour ago', '30 minutes ago' or 2026-01-19T10:00:00Z")
        kwargs.setdefault("widget", forms.TextInput(attrs=TEXT))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        try:
            moment = timespec.since(value, flag="since")
        except timespec.UsageError as e:
            raise ValidationError(str(e)) from None
        if moment > timezone.now():
            raise ValidationError("The time must be in the past.")
        return moment


class PollIntervalForm(forms.Form):
    poll_interval = forms.CharField(
        initial="5m",
        widget=forms.TextInput(attrs=TEXT),
        help_text="How often to poll: e.g. 5m, 90 seconds, 1h (30 seconds to 24 hours).",
    )

    def clean_poll_interval(self):
        try:
            interval = timespec.duration(self.cleaned_data["poll_interval"], flag="poll interval")
        except timespec.UsageError as e:
            raise ValidationError(str(e)) from None
        if not MIN_POLL_INTERVAL <= interval <= MAX_POLL_INTERVAL:
            raise ValidationError("The poll interval must be between 30 seconds and 24 hours.")
        return interval


class MaxRetriesForm(forms.Form):
    max_retries = forms.IntegerField(
        initial=10,
        min_value=1,
        max_value=MAX_WEBHOOK_RETRIES,
        help_text="Attempts a delivery may have in all (attempts so far count).",
    )


class SinceForm(forms.Form):
    since = SinceField(initial="1 hour ago")


class ReconcileForm(forms.Form):
    since = SinceField(initial="2 hours ago", help_text="Fetch what changed at the provider since then.")


class SampleSizeForm(forms.Form):
    sample_size = forms.IntegerField(
        initial=20,
        min_value=1,
        max_value=MAX_SAMPLE_SIZE,
        help_text="Linked records compared per integration.",
    )


class ResolutionForm(forms.Form):
    resolution = forms.CharField(
        initial=DEFAULT_RESOLUTION, max_length=500, widget=forms.TextInput(attrs={"size": 60})
    )


class RetryFailedForm(forms.Form):
    """Which failed syncs of the selected integrations to retry (all when left empty)."""

    error_category = forms.ChoiceField(choices=[("", "Any category"), *ErrorCategory.choices], required=False)
    since = SinceField(required=False, help_text="Only failures since then, e.g. '2 hours ago' (optional).")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60}))


class IntegrationForm(forms.ModelForm):
    """The integration add/change form: the catalog decides which category, auth type and mode a provider has."""

    class Meta:
        model = Integration
        # IntegrationAdmin's fieldsets decide the fields shown; these are the ones clean() reads.
        fields = ["tenant", "provider", "category", "auth_type", "mode"]

    def clean(self):
        data = super().clean()
        # A field the change form shows read-only is not in the form: the saved value counts.
        shape = {
            f: data.get(f) if f in self.fields else getattr(self.instance, f, None)
            for f in ("provider", "category", "auth_type", "mode")
        }
        try:
            validate_integration_shape(
                shape["provider"], shape["category"], shape["auth_type"], shape["mode"]
            )
        except ValidationError as e:
            for field, messages in e.message_dict.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return data

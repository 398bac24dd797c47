"""Forms of the incident tracker: open by hand, status change, action parameters, notes, postmortem."""

from django import forms

from incidents.checklist.actions import Action
from incidents.models import Postmortem, Severity
from incidents.runbooks import RUNBOOK_CHOICES
from integrations.catalog import PROVIDER_CHOICES
from integrations.models import Tenant


class OpenIncidentForm(forms.Form):
    provider = forms.ChoiceField(choices=PROVIDER_CHOICES)
    runbook = forms.ChoiceField(choices=RUNBOOK_CHOICES)
    severity = forms.ChoiceField(
        choices=[("", "From the provider (SEV-3 with a polling fallback, else SEV-2)"), *Severity.choices],
        required=False,
    )
    title = forms.CharField(max_length=300, required=False, widget=forms.TextInput(attrs={"size": 60}))
    tenants = forms.ModelMultipleChoiceField(
        queryset=Tenant.objects.order_by("name"),
        required=False,
        help_text="Affected tenants, if known.",
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )


class NoteForm(forms.Form):
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=5000)


def action_form_class(action: Action) -> type[forms.Form]:
    """A form with the action's parameters (validated again by the service)."""
    fields = {}
    for p in action.params:
        if p.kind == "int":
            fields[p.name] = forms.IntegerField(
                label=p.label, required=p.required, min_value=1, max_value=1440, help_text=p.help
            )
        elif p.kind == "textarea":
            fields[p.name] = forms.CharField(
                label=p.label,
                required=p.required,
                help_text=p.help,
                max_length=5000,
                widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
            )
        else:
            fields[p.name] = forms.CharField(
                label=p.label,
                required=p.required,
                help_text=p.help,
                max_length=400,
                widget=forms.TextInput(attrs={"size": 60}),
            )
    return type("ActionParamsForm", (forms.Form,), fields)


def _text(field: str) -> forms.CharField:
    model_field = Postmortem._meta.get_field(field)
    return forms.CharField(
        label=model_field.verbose_name, required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 90})
    )


class PostmortemForm(forms.Form):
    root_cause = _text("root_cause")
    fallback_effective = _text("fallback_effective")
    reconciliation_completeness = _text("reconciliation_completeness")
    communication_timeliness = _text("communication_timeliness")
    multi_provider_strategy = _text("multi_provider_strategy")
    fallback_reliability = _text("fallback_reliability")
    local_caching = _text("local_caching")


class FollowUpForm(forms.Form):
    item = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60}))
    owner = forms.CharField(max_length=200, required=False, widget=forms.TextInput(attrs={"size": 20}))
    done = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if bool((data.get("item") or "").strip()) != bool((data.get("owner") or "").strip()):
            raise forms.ValidationError("A follow-up item needs both a description and an owner.")
        return data


FollowUpFormSet = forms.formset_factory(FollowUpForm, extra=3, max_num=50)

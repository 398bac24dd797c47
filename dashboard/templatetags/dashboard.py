"""{% health_dashboard %}: the dashboard panel inside any admin page (the admin index shows it first)."""

from django import template

from dashboard.context import dashboard_context

register = template.Library()


@register.inclusion_tag("dashboard/_panel.html", takes_context=True)
def health_dashboard(context, heading=True):
    request = context["request"]
    return {"request": request, "user": request.user, "heading": heading, **dashboard_context(request)}


@register.inclusion_tag("dashboard/_head.html", takes_context=True)
def dashboard_head(context):
    return {"refresh_seconds": 30}

"""The three support roles and their rights, created by a data migration (and re-created by tests after a flush)."""

from django.contrib.auth.management import create_permissions

VIEWER = "Support viewer"
OPERATOR = "Support operator"
ADMIN = "Integrations admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
APPS = ("integrations", "incidents", "django_celery_beat")


def ensure_groups(apps) -> None:
    """Viewer: read only. Operator: read and run actions. Integrations admin: everything, credentials too."""
    for app_config in apps.get_app_configs():
        # Permissions are normally created after all migrations have run; make sure they exist now.
        if getattr(app_config, "models_module", None) is None:
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
        else:
            create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ours = Permission.objects.filter(content_type__app_label__in=APPS)
    view = list(ours.filter(codename__startswith="view_"))
    operate = list(ours.filter(codename__in=["operate_integration", "operate_incident"]))
    Group.objects.get_or_create(name=VIEWER)[0].permissions.set(view)
    Group.objects.get_or_create(name=OPERATOR)[0].permissions.set(view + operate)
    Group.objects.get_or_create(name=ADMIN)[0].permissions.set(ours)

from rest_framework.permissions import BasePermission, DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Django model permissions for every method, reads included (view_<model>)."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }


def has_perms(*perms: str, any_of: bool = False) -> type[BasePermission]:
    """A DRF permission class requiring all (or any) of `perms`, for views without a model queryset."""

    class HasPerms(BasePermission):
        def has_permission(self, request, view):
            user = request.user
            if not (user and user.is_authenticated):
                return False
            return any(user.has_perm(p) for p in perms) if any_of else user.has_perms(perms)

    HasPerms.__name__ = f"HasPerms({', '.join(perms)})"
    return HasPerms

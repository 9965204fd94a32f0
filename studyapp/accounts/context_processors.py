from .roles import user_roles


def roles(request):
    """Expose the signed-in user's roles so templates show only what the role may do."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": []}
    return {"user_roles": user_roles(user)}

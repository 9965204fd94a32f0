"""Create one login per role for a local or demo installation, and print how to log in."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from studyapp.accounts.roles import ROLES, sync_roles


class Command(BaseCommand):
    help = "Create users admin, pi, coordinator and annotator (existing users keep their password)."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Password for newly created users (default: a random one).")
        parser.add_argument("--credentials-file", help="Also write the credentials of the users created now to this file.")

    @transaction.atomic
    def handle(self, *args, password=None, credentials_file=None, **options):
        sync_roles()
        password = password or secrets.token_urlsafe(9)
        users = get_user_model().objects
        created = []
        for username in ("admin", *ROLES):
            if users.filter(username=username).exists():
                continue
            if username == "admin":
                users.create_superuser(username=username, password=password, email="")
            else:
                user = users.create_user(username=username, password=password)
                user.groups.add(Group.objects.get(name=username))
            created.append(username)
        if created:
            lines = [f"  {name:<12} {password}" for name in created]
            text = "Created study users (username, password):\n" + "\n".join(lines)
            if credentials_file:  # replaced, so it never lists logins of an earlier database
                with open(credentials_file, "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
            self.stdout.write(text)
        else:
            self.stdout.write("Study users already exist; their passwords are unchanged.")

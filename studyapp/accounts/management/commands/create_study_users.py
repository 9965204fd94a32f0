"""Create one login per role for a local or demo installation, and print how to log in."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from studyapp.accounts.roles import ROLES, sync_roles

STUDY_USERS = ("admin", *ROLES)


class Command(BaseCommand):
    help = "Create users admin, pi, coordinator and annotator (existing users keep their password)."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="One password for every user created now, for scripted setups "
                                               "(default: a different random password for each).")
        parser.add_argument("--credentials-file", help="Also write the credentials of the users created now to this file.")

    @transaction.atomic
    def handle(self, *args, password=None, credentials_file=None, **options):
        sync_roles()
        users = get_user_model().objects
        created = {}
        for username in STUDY_USERS:
            if users.filter(username=username).exists():
                continue
            # One password per account: knowing the annotator's login must not open the PI's or the admin's.
            created[username] = password or secrets.token_urlsafe(9)
            if username == "admin":
                users.create_superuser(username=username, password=created[username], email="")
            else:
                user = users.create_user(username=username, password=created[username])
                user.groups.add(Group.objects.get(name=username))
        if created:
            lines = [f"  {name:<12} {secret}" for name, secret in created.items()]
            text = "Created study users (username, password):\n" + "\n".join(lines)
            if credentials_file:  # replaced, so it never lists logins of an earlier database
                with open(credentials_file, "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
            self.stdout.write(text)
        else:
            self.stdout.write("Study users already exist; their passwords are unchanged.")

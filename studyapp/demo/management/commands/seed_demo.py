from django.core.management.base import BaseCommand, CommandError

from studyapp.demo.services import demo_seed, demo_seeded
from studyapp.ops.models import BackgroundJob


class Command(BaseCommand):
    help = "Seed the demo study from the synthetic phantom (default 100 hands, 50 per group)."

    def add_arguments(self, parser):
        parser.add_argument("--hands", type=int, default=100)
        parser.add_argument("--seed", type=int, default=2022)
        parser.add_argument("--background", action="store_true",
                            help="Queue it for the worker and return at once; progress shows in the app.")

    def handle(self, *args, hands, seed, background, **options):
        if hands < 2:
            raise CommandError("Seed at least 2 hands (one per group).")
        if background:
            from studyapp.demo.tasks import seed_demo_study

            if demo_seeded():  # e.g. `run.sh --demo` started again: nothing to do, and no failed job to show
                self.stdout.write("The demo study is already seeded.")
                return
            job = BackgroundJob.objects.create(kind="seed_demo", params={"hands": hands, "seed": seed}, total=hands)
            seed_demo_study.delay(job.pk)
            self.stdout.write(f"Demo study queued ({hands} hands); the cohort page shows its progress.")
            return
        try:
            created = demo_seed(n_hands=hands, seed=seed,
                                progress=lambda done, total: self.stdout.write(f"\r{done}/{total} hands", ending=""))
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"\nSeeded {created} hands.")

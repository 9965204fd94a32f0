from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from studyapp.demo.jobs import demo_job_queue
from studyapp.demo.services import DEMO_AWAITING, DEMO_PROSPECTIVE, demo_seed, demo_seeded


class Command(BaseCommand):
    help = ("Seed the demo study from the synthetic phantom (default 100 hands, 50 per group, at two simulated "
            "sites), plus hands awaiting ROIs and prospective hands without EPS.")

    def add_arguments(self, parser):
        parser.add_argument("--hands", type=int, default=100)
        parser.add_argument("--seed", type=int, default=2022)
        parser.add_argument("--awaiting", type=int, default=DEMO_AWAITING,
                            help="More hands whose clips wait for ROIs (the annotator's worklist).")
        parser.add_argument("--prospective", type=int, default=DEMO_PROSPECTIVE,
                            help="Newly enrolled hands with confirmed ROIs and no EPS yet (blinded prediction); "
                                 "`demo_enter_eps` records their EPS later.")
        parser.add_argument("--background", action="store_true",
                            help="Queue it for the worker and return at once; progress shows in the app.")

    def handle(self, *args, hands, seed, awaiting, prospective, background, **options):
        if hands < 2:
            raise CommandError("Seed at least 2 hands (one per group).")
        if awaiting < 0 or prospective < 0:
            raise CommandError("--awaiting and --prospective can't be negative.")
        if background:
            if demo_seeded():  # e.g. `run.sh --demo` started again: nothing to do, and no failed job to show
                self.stdout.write("The demo study is already seeded.")
                return
            with transaction.atomic():
                demo_job_queue(hands=hands, seed=seed, awaiting=awaiting, prospective=prospective)
            self.stdout.write(f"Demo study queued ({hands} hands); the cohort page shows its progress.")
            return
        try:
            created = demo_seed(n_hands=hands, seed=seed, awaiting_annotation=awaiting, prospective=prospective,
                                explain_sample=True,
                                progress=lambda done, total: self.stdout.write(f"\r{done}/{total} hands", ending=""))
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"\nSeeded {created} hands.")

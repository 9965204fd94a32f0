from django.core.management.base import BaseCommand, CommandError

from studyapp.demo.services import demo_prospective_eps_enter


class Command(BaseCommand):
    help = ("Record the EPS of the demo's prospective hands (from the demo's truth file), as a coordinator "
            "would once the nerve conduction study is done; hands whose EPS is in already are skipped.")

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=None, help="At most this many hands (default: all).")

    def handle(self, *args, count, **options):
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1.")
        try:
            hands = demo_prospective_eps_enter(limit=count)
        except ValueError as error:
            raise CommandError(str(error)) from None
        for hand in hands:
            self.stdout.write(f"{hand}: EPS recorded, stage {hand.stage} ({hand.group}).")
        self.stdout.write(f"Recorded the EPS of {len(hands)} prospective hands.")

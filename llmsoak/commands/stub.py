"""``llmsoak stub``: placeholder until its issue lands."""

HELP = "(not built yet)"


def prepare_parser(parser):
    pass


def run(args) -> int:
    from llmsoak.errors import CommandError

    raise CommandError("llmsoak stub is not built yet")

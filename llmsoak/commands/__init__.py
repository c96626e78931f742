"""One module per ``llmsoak`` subcommand: ``HELP``, ``prepare_parser(parser)``, ``run(args) -> int``."""

"""The ``switchman`` command line: gateway, sim and demo subcommands."""

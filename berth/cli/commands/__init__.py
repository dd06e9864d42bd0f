"""One module per verb, imported only when that verb runs (see ``berth.cli.main.COMMANDS``).

Each module defines ``USAGE`` (the usage line after ``berth VERB``), optionally ``ALIASES``,
``configure(parser)`` to declare its flags and ``run(ctx, args) -> int``.
"""

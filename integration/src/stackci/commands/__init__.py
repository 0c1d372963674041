"""Subcommands of `stackci`, one module per concern; importing a module registers its commands."""

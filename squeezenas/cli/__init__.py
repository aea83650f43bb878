"""The command line: one thin module per subcommand, each calling library functions."""

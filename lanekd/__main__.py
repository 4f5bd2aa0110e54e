from lanekd.cli_fast import entry

entry()

from lanekd.cli import entry

entry()

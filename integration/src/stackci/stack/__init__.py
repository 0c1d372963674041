"""The stack under test, reached only through subprocesses of an assembled environment:
`port.py` is the one typed seam (what the harness asks a stack environment), `runner.py` the
one way to start a process in one."""

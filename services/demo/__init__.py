"""`supportflow demo`: one ticket (or more) driven through the whole support process of SOP §1
against a running system (`./dev up`), printed as a timeline, then the notifications it caused.

A client of the public gRPC APIs in `proto/` only, like any upstream system: it imports no service
code. `story` holds the SOP as steps, `desk` the calls and waits, `timeline` the printing, `run` the
command.
"""

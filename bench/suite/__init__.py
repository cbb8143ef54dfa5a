"""`make bench`: issue 12's workloads uncached, as cached hits and against a bare
endpoint, before/after a git ref, with worker scaling, a chart and flame graphs.

Modules: workloads (the requests), trees (this checkout and a baseline export),
load (one wrk run, server CPU from /proc), statements (per request, in-process),
bare (the bare Starlette endpoint), runner (servers, interleaved rounds), figures
(medians), report (markdown), chart (PNG), flame (py-spy SVG).
"""

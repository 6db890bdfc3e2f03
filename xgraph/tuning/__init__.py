"""`xgraph tune`: a spec's `search:` explored with Optuna, each trial an `xgraph train` run in
a process of its own (checks: the search against the spec; study: storage, pruner, workers
that stopped; trials: one run, watched epoch by epoch; results: the table, the plots, the
best trial as a spec)."""

"""Many files: inputs scanned and paired with outputs (:mod:`.job`), one file run through
the engine (:mod:`.run`), ``--json`` records (:mod:`.records`) and the multi-process
runner (:mod:`.distributed`)."""

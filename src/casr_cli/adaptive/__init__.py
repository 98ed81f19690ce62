"""lite's adaptive detail: how degraded an input is (:mod:`.estimate`, pure numpy) and the
detail schedule that follows from it (:mod:`.schedule`, the measured table; docs/lite.md,
"Adaptive detail").  No torch here."""

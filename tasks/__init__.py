"""Jobs, items, hits, assignments, answers, consensus; the pipeline and the worker task UI."""

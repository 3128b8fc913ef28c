"""Judging measurements: bootstrap statistics, comparisons of result sets with verdicts, and the
accuracy measures of a model against its reference. Depends on the store, the model and the
foundation."""

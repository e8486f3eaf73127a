"""The benchmark study: any CLIP of a models file × the bias evaluations, one result per (model, evaluation),
and a leaderboard (:mod:`.leaderboard`)."""

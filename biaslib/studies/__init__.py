"""The studies: each a package that owns its pipeline, its result reading, its findings and its figures.

* :mod:`biaslib.studies.amplification` — bias amplification through generated training data (the CVPR 2024
  study): generate → mix → train one CLIP per ratio → evaluate → bias against the ratio, with its controls;
* :mod:`biaslib.studies.multilingual` — multilingual debiasing (MAGBIG-style): prompts per language →
  generation → fine-tuning → faces and perceived gender → fairness and CLIP score per language, before vs after;
* :mod:`biaslib.studies.benchmark` — any CLIP × the bias evaluations, and a leaderboard.

A study imports the pipeline steps, the metrics and the core below it, never another study (``tests/test_layers.py``).
"""

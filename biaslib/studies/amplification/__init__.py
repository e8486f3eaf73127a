"""The amplification study: would deep generative models amplify bias in future models?

* :mod:`.pipeline` — one experiment end to end (export → generate → mix → train → eval), resumable;
* :mod:`.results` — every experiment's results of a params file, and the measures its figures share;
* :mod:`.report` — gaps tested against chance and their change along the mixing ratio;
* :mod:`.dose_response` — trends against the ratio beyond training noise, and the detectable slope of a design;
* :mod:`.generator_amplification` — the generator's skew against its training data's;
* :mod:`.figures` — the study's figures and findings from its result files alone;
* :mod:`.control`, :mod:`.control_report` — the declared primary test on a planted generator and an A/A pair.
"""

"""The multilingual debiasing study (MAGBIG-style).

* :mod:`.pipeline` — prompts → per-language generation → fine-tuning datasets → fine-tuning → generation again;
* :mod:`.evaluation` — faces, perceived gender and skin tone, fairness and CLIP score per language and set;
* :mod:`.findings` — the tested findings text.
"""

"""English indefinite articles chosen by the sound of the next word: "an East Asian man", "a university".

Every English prompt biaslib builds from a template and a word goes through :func:`agree_articles` (or
:func:`with_article` / :func:`fill`), so an article never depends on which group's word fills the slot: the
template "a photo of a {}." gave "a East Asian man" and "a Indian woman" but "a White man", an error only some
groups' prompts carried. The rule is the first letter (a, e, i, o, u → "an"), corrected for the common words
whose first sound is not their first letter's (:data:`CONSONANT_SOUND`, :data:`VOWEL_SOUND`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

#: Word beginnings spelt with a vowel but said with a consonant ("a university", "a European", "a one-off").
CONSONANT_SOUND: tuple[str, ...] = ("uni", "use", "usu", "uti", "ure", "uro", "eu", "ewe", "one", "once", "ubiq")
#: Word beginnings spelt with a consonant but said with a vowel ("an honest", "an hour", "an heir").
VOWEL_SOUND: tuple[str, ...] = ("honest", "honor", "honour", "hour", "heir")

_ARTICLE_BEFORE_WORD = re.compile(r"\b(a|an|A|An|AN)(\s+)(?=([A-Za-z][\w-]*))")


def article(word: str) -> Literal["a", "an"]:
    """``"an"`` if ``word`` (a word or a phrase; its first word counts) starts with a vowel sound, else ``"a"``."""
    first = word.strip().lower()
    if first.startswith(VOWEL_SOUND):
        return "an"
    if first.startswith(CONSONANT_SOUND) or first[:1] not in "aeiou":
        return "a"
    return "an"


def with_article(phrase: str) -> str:
    """``phrase`` after its indefinite article: ``with_article("engineer") == "an engineer"``."""
    return f"{article(phrase)} {phrase}"


def agree_articles(text: str) -> str:
    """``text`` with every indefinite article ("a", "an", either case) agreeing with the word after it:
    ``"a photo of a East Asian man"`` → ``"a photo of an East Asian man"``; other words are left as they are."""
    def agree(match: re.Match[str]) -> str:
        written, space, word = match.group(1), match.group(2), match.group(3)
        chosen = article(word)
        return (chosen.capitalize() if written[0].isupper() else chosen) + space

    return _ARTICLE_BEFORE_WORD.sub(agree, text)


def fill(template: str, *args: Any, **kwargs: Any) -> str:
    """``template.format(*args, **kwargs)`` with its articles made to agree (:func:`agree_articles`)."""
    return agree_articles(template.format(*args, **kwargs))

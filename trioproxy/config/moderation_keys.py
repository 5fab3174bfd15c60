"""The ``litellm_settings`` keys of the hosted moderation built-ins (names only: ``schema.py`` validates
them; ``policies/llamaguard.py`` and ``policies/google_text_moderation.py`` read them).
"""

from __future__ import annotations

__all__ = ["GOOGLE_CATEGORIES", "GOOGLE_THRESHOLD_KEYS", "threshold_keys"]

#: Cloud Natural Language moderation categories, as LiteLLM names them: the API's category name
#: lower-cased, ``&`` → ``and``, commas dropped, spaces → ``_`` ("Death, Harm & Tragedy" →
#: ``death_harm_and_tragedy``)
GOOGLE_CATEGORIES = (
    "toxic", "insult", "profanity", "derogatory", "sexual", "death_harm_and_tragedy", "violent",
    "firearms_and_weapons", "public_safety", "health", "religion_and_belief", "illicit_drugs",
    "war_and_conflict", "politics", "finance", "legal",
)


def threshold_keys(category: str) -> tuple[str, str]:
    """Both spellings of a category's threshold: LiteLLM's code reads ``<category>_confidence_threshold``;
    its docs' table writes ``<category>_threshold`` for most categories. Both are accepted."""
    return f"{category}_confidence_threshold", f"{category}_threshold"


GOOGLE_THRESHOLD_KEYS = tuple(key for category in GOOGLE_CATEGORIES for key in threshold_keys(category))

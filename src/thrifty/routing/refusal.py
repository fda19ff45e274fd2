"""Refusal and hedging detection over an answer's text, for cascade checks: precompiled
regexes, English first and the common refusal openings of a few other languages. Pure and
fast (a few microseconds per kilobyte); it judges wording, never meaning.

False positives, by design: a refusal is looked for only in the answer's opening
(``_OPENING`` characters), where models refuse, so a long answer that quotes "I can't help
with that" mid-way passes, while a story that opens with a character saying it does not.
"As an AI..." counts only when followed by an inability ("As an AI, I cannot ..."), so the
harmless "As an AI, I don't have opinions, but here is ..." is a hedge, not a refusal.
Hedging counts uncertainty phrases per length, so one "probably" in an essay scores low.
"""

from __future__ import annotations

import math
import re

_OPENING = 400
"""Characters of the answer searched for a refusal."""

# Patterns see lowercased text with curly apostrophes straightened (see ``_normal``).
_I_CANT = (r"(?:i (?:cannot|can't|can not|won't|will not|must decline|must refuse|am unable"
           r"|am not able|am not allowed|am not permitted|do not feel comfortable"
           r"|don't feel comfortable)|i'm (?:unable|not able|not allowed|not permitted))")
_TASK = (r"(?:help|assist|provide|comply|fulfil|create|generate|write|produce|engage|support"
         r"|answer|share|give|do (?:that|this)|with (?:that|this)|complete)")

# Every pattern starts right after whitespace, '*', '"' or '(' (the text gets a leading
# space): a first character from a small set is the regex engine's fast path, so it only
# tries the patterns at word starts. CJK text has no spaces, so it has its own patterns.
_REFUSAL = re.compile(r"[\s*\"(](?:" + "|".join((
    rf"{_I_CANT}\b[^.!?\n]{{0,40}}?\b{_TASK}",
    rf"i(?:'m| am) (?:sorry|afraid)\b[^.!?\n]{{0,20}}?{_I_CANT}",
    rf"as an ai\b[^.!?\n]{{0,40}}?{_I_CANT}",
    r"as an ai\b[^.!?\n]{0,40}?\bi (?:do not|don't) have the (?:ability|capability)",
    r"(?:this|that|your) request (?:violates|goes against|is against|is not something)",
    r"(?:against|violates?) (?:my|our|the|openai's) (?:guidelines|policies|usage polic"
    r"|content polic|ethical guidelines|programming)",
    r"i must (?:respectfully )?(?:decline|refuse)\b",
    # Best effort, other languages: the usual "sorry, I cannot" openings.
    r"je (?:suis désolée?,? mais je )?ne peux pas\b",
    r"lo siento,? (?:pero )?no puedo\b",
    r"es tut mir leid,? (?:aber )?ich kann\b[^.!?\n]{0,30}\bnicht\b",
    r"ich kann (?:ihnen |dir )?(?:dabei |damit )?nicht helfen\b",
    r"(?:desculpe|sinto muito),? (?:mas )?não (?:posso|consigo)\b",
    r"mi dispiace,? (?:ma )?non posso\b",
    r"извините,? (?:но )?я не могу\b",
)) + ")")
_REFUSAL_CJK = re.compile(
    r"(?:抱歉|对不起)，?我(?:无法|不能)|我无法(?:提供|帮助|协助)"
    r"|申し訳(?:ありません|ございません)が[^。]{0,30}できません")

_STRONG = (
    "i'm not sure", "i am not sure", "not certain", "not confident", "i'm unsure", "i am unsure",
    "don't know", "do not know", "enough information", "insufficient information",
    "cannot be determined", "can't be determined", "cannot verify", "can't verify",
    "cannot confirm", "can't confirm", "cannot be sure", "can't be sure", "cannot be certain",
    "can't be certain", "unclear", "not clear", "hard to say", "difficult to say",
    "may be wrong", "might be wrong", "could be wrong", "may be mistaken", "might be mistaken",
    "without more information", "without more context", "just guessing", "best guess",
    "no way to know", "impossible to know", "don't have access to real-time",
)
_WEAK = (
    "it might be", "it may be", "it could be", "possibly", "perhaps", "maybe", "probably",
    "i think", "i believe", "i suspect", "it seems", "seems to", "appears to", "likely",
    "unlikely", "not entirely", "roughly", "presumably", "i guess", "if i recall",
    "to my knowledge", "as far as i know",
)
_WEIGHTS = {p: 1.0 for p in _STRONG} | {p: 0.4 for p in _WEAK}
_WORDS_PER_UNIT = 120
"""Hits are counted per this many words, so long answers need proportionally more."""


_Trie = dict[str, "_Trie"]


def _trie(phrases: tuple[str, ...]) -> str:
    """One regex alternation shaped as a trie: the engine rejects a position on its first
    character instead of trying every phrase, which is what makes this fast."""
    root: _Trie = {}
    for phrase in phrases:
        node = root
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


# Phrases are matched after a space (the text is lowercased and a space put in front), so
# the engine jumps from space to space: a literal first character is its fast path.
_HEDGES = re.compile(rf" ({_trie(_STRONG + _WEAK)})(?![a-z])")
def is_refusal(text: str) -> bool:
    """Whether the answer's opening refuses the task ("I can't help with that", "As an AI,
    I cannot ...", "this request violates ... policies", "Lo siento, no puedo ...")."""
    opening = " " + _normal(text[:_OPENING])
    if _REFUSAL.search(opening) is not None:
        return True
    return not opening.isascii() and _REFUSAL_CJK.search(opening) is not None


def hedging_score(text: str) -> float:
    """How uncertain the answer sounds, in [0, 1]: 0 for none of the phrases, about 0.63 for
    one strong phrase ("I'm not sure", "I don't have enough information") in a short
    answer, about 0.33 for one weak one ("possibly", "it might be")."""
    hits = _HEDGES.findall(" " + _normal(text))
    if not hits:
        return 0.0
    units = max(1.0, text.count(" ") / _WORDS_PER_UNIT)
    weight = sum(_WEIGHTS.get(h, 0.0) for h in hits) / units
    return 1.0 - math.exp(-weight)


def _normal(text: str) -> str:
    text = text.lower()
    return text.replace("’", "'") if "’" in text else text

"""The caller's name as they introduced themselves: "my name is X", "this is X", "I'm X", "X here".

X is one to three capitalised words of any script's letters, with apostrophes and hyphens inside
(José Núñez, O'Brien, Jean-Luc Picard), after an optional title (Dr., Mrs.). Capitals are the only
sign of a name a transcript carries, so a lower-case "this is urgent" is never one; capitalised
words that are not names ("It's Tuesday", "I'm Looking for…", "This is The front desk") are
refused by a list of common words, and the weakest cues ("I'm", "it's", "X here") also need the name
to end the sentence or be followed by a word that introductions go on with ("and", "from", "calling").

The patterns run on RE2 over a `CallerText` (whitespace a single space, one turn per line, so a
name never spans two turns), and at most `MAX_CANDIDATES` candidates are read, so hostile text
costs linear time.
"""

from __future__ import annotations

from collections.abc import Iterator

from integrations.common.linear_regex import compile_linear

__all__ = ["MAX_CANDIDATES", "caller_name"]

# Candidates read in all; a real introduction is among the first few, hostile text gets no more.
# Each costs one RE2 search, linear in the text (about 5 ms for a megabyte).
MAX_CANDIDATES = 16
_MAX_NAME_LENGTH = 60

# One word of a name: a capital, then letters, apostrophes and hyphens (O'Brien, Jean-Luc, McDonald).
# `\p{Lu}` and `\p{Ll}` are RE2's Unicode classes. The word is kept this loose because a stricter
# shape makes RE2's automaton too large for its memory budget; `_name_word` checks the rest.
_WORD = r"\p{Lu}[\p{Ll}\p{Lu}'-]*"
_TITLE = r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof)\.? "
_NAME = rf"(?:{_TITLE})?{_WORD}(?: {_WORD}){{0,2}}"
# What may follow a name: not a letter, digit, apostrophe or hyphen (RE2's \b is ASCII only), and not
# the "." or "@" of an address ("it's Dana.Reyes@example.com"); a full stop ends a sentence.
_END = r"(?:[^\pL\pN'.@-]|\.(?:[^\pL\pN]|$)|$)"

# Strongest first: "my name is" names the caller; "this is" and "X here" almost always do;
# "I'm" and "it's" often do not ("I'm Canadian", "it's Tuesday").
_STRONG, _INTRO, _WEAK = 0, 1, 2
_CANDIDATE = compile_linear(
    r"(?:(?P<strong>\b(?i:(?:my|the) (?:(?:full|first|last) )?name(?: is|'s)))"
    r"|(?P<intro>\b(?i:this is))"
    r"|(?P<weak>\b(?i:it's|it is|i'm|i am)))"
    rf" (?P<name>{_NAME}){_END}"
    # "Maria here", "Hi, Maria Garcia speaking": only at the start of a turn, a sentence or a greeting.
    rf"|(?:^|\n|[.,!?;:] ?|\b(?i:hi|hello|hey|yes|yeah|oh|well),? )(?P<signed>{_NAME}),? (?i:here|speaking)\b"
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that introductions go on with after the name, in lower case ("I'm Maria and…", "it's Maria calling").
_FOLLOWERS = _words("and from with at calling speaking here again returning following checking just who over by too")
# Capitalised words that follow these cues without being a name. Compared in lower case.
_NOT_NAMES = _words(
    """
    i i'm i'd i'll i've im a an the this that these those it it's its he she they we you me my your our
    his her their who what when where why how which there here now then not no yes yeah yep nope ok okay
    so and but or if just also still only really very actually all any some every none nothing something
    anything everything everyone everybody someone somebody anyone anybody nobody
    hi hello hey good morning afternoon evening night noon please thanks thank sorry well um uh oh sure fine
    great right glad happy afraid ready done back new late early free busy available unavailable unable able
    interested concerned worried confused curious urgent important regarding about re calling looking trying
    wondering hoping phoning ringing checking following getting going having asking reaching returning
    wanting needing waiting running doing thinking planning booking scheduling cancelling canceling
    today tomorrow tonight yesterday monday tuesday wednesday thursday friday saturday sunday
    january february march july september october november december
    first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth
    one two three four five six seven eight nine ten eleven twelve
    front desk reception office support customer patient client billing sales service team manager
    dr mr mrs ms mx miss prof doctor sir madam ma'am mom dad mother father husband wife son daughter
    """
)
_TITLES = frozenset({"Dr", "Mr", "Mrs", "Ms", "Mx", "Miss", "Prof"})
# First names that are also months: a name only with a surname after them ("June Carter", not "It's June").
_MONTH_NAMES = frozenset({"april", "may", "june", "august"})


def caller_name(caller_text: str) -> str | None:
    """The name the caller gave in `caller_text` (a `CallerText`'s text): the strongest cue wins
    ("my name is" over "this is" over "I'm"), then the earliest. None when the caller gave none."""
    best: tuple[int, str] | None = None
    for strength, name in _candidates(caller_text):
        if strength == _STRONG:
            return name
        if best is None or strength < best[0]:
            best = (strength, name)
    return best[1] if best is not None else None


def _candidates(text: str) -> Iterator[tuple[int, str]]:
    position = 0
    for _ in range(MAX_CANDIDATES):
        match = _CANDIDATE.search(text, position)
        if match is None:
            return
        groups = match.groupdict()  # one lookup of the group names, not one per group
        signed = groups["signed"] is not None
        said = groups["signed"] or groups["name"] or ""
        # The name ends the match but for what follows it (RE2's matches take no group names in start()).
        start = text.rfind(said, match.start(), match.end())
        strength = _STRONG if groups["strong"] else _WEAK if groups["weak"] else _INTRO
        name = _name(said)
        if name is not None:
            needs_a_sequel = strength == _WEAK or signed
            after = match.end() if signed else start + len(name)
            if not needs_a_sequel or _goes_on_like_an_introduction(text, after):
                yield strength, name
        # Go on from inside this name, so a rejected one hides nothing: "It's Tuesday This is Maria".
        position = start + 1


def _name(said: str) -> str | None:
    """The name in `said` (title and capitalised words): up to its first common word, or None."""
    words = said.split(" ")  # the turns' whitespace is already collapsed to single spaces
    has_title = len(words) > 1 and words[0].rstrip(".") in _TITLES
    kept: list[str] = []
    for word in words[1:] if has_title else words:
        if not _name_word(word):
            break
        kept.append(word)
    if not kept or any(word.endswith("'s") for word in kept):
        return None  # no name, or someone else's: "this is Maria's husband"
    if len(kept) == 1 and not has_title and kept[0].lower() in _MONTH_NAMES:
        return None
    name = " ".join([words[0], *kept] if has_title else kept)
    return name if len(name) <= _MAX_NAME_LENGTH else None


def _name_word(word: str) -> bool:
    # Not a common word, not in capitals ("OK", "ASAP"), not ending in an apostrophe or a hyphen.
    return word.lower() not in _NOT_NAMES and not word.isupper() and word[-1] not in "'-"


def _goes_on_like_an_introduction(text: str, index: int) -> bool:
    """Whether what follows `index` ends the sentence, starts a new one, or goes on as introductions do."""
    rest = text[index : index + 24].split("\n", 1)[0].split(maxsplit=1)
    if not rest or not rest[0][0].isalpha():
        return True
    word = rest[0].rstrip(".,!?;:")
    return word[0].isupper() or word.lower() in _FOLLOWERS

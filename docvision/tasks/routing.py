"""Page routing: which pages of a long document the model should look at for a question.

In: a question and a document's pages (their text anchors). Out: a Route -- the pages to show, grouped
into chunks that each fit one model call (a page count and a visual-token budget), most relevant chunk
first, plus each page's relevance score and the query terms, so records can name the evidence and the
boxes of the matching words.

Ranking is BM25 (rank-bm25's BM25Plus: BM25Okapi gives a term found on exactly half the pages, or on one
page of two, an idf of 0, which would hide the one page that matters in a short document). Pages without
text (scans, pictures) cannot be ranked; they are always considered, bounded: a document with no text at
all is read in order, and in a mixed document the textless pages nearest the best match ride along.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from docvision.document import Page, Word

# Words that carry no relevance on their own; dropped from questions (never from pages).
STOPWORDS = frozenset(
    """a an and are as at be by can could did do does for from has have how i if in into is it its
    me my of on or please show tell that the their there these this to was were what when where which
    who whom whose why will with would you your give list find document page pages""".split()
)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)  # letters and digits; numbers are kept as terms

RELATIVE_CUTOFF = 0.4  # a page is evidence when it scores at least this fraction of the best page
MAX_TEXTLESS = 2  # scans/pictures that ride along with the matching pages of a mixed document


def tokenize(text: str) -> list[str]:
    """Lowercase, split on anything that is not a letter or digit; "Q3-2024" -> ["q3", "2024"]."""
    return _TOKEN.findall(text.lower())


def stem(token: str) -> str:
    """Fold an English plural onto its singular (Harman's S-stemmer), so "turbines" finds "turbine"."""
    if len(token) <= 3 or not token.isalpha():
        return token
    if token.endswith("ies") and not token.endswith(("eies", "aies")):
        return token[:-3] + "y"
    if token.endswith("es") and not token.endswith(("aes", "ees", "oes")):
        return token[:-1]
    if token.endswith("s") and not token.endswith(("us", "ss")):
        return token[:-1]
    return token


def terms_of(text: str) -> list[str]:
    """The tokens ranking compares: ``tokenize`` with plurals folded (the same for pages and questions)."""
    return [stem(t) for t in tokenize(text)]


def query_terms(question: str) -> list[str]:
    """The question's distinct terms in order, stopwords dropped (all of them if nothing else is left)."""
    tokens = tokenize(question)
    kept = [t for t in tokens if t not in STOPWORDS] or tokens
    return list(dict.fromkeys(kept))


@dataclass(frozen=True)
class Budget:
    """What one model call may carry: at most ``pages`` pages and ``tokens`` visual tokens."""

    pages: int = 4
    tokens: int | None = None
    evidence_pages: int = 12  # pages read in all, across chunks (map-reduce beyond one call)


@dataclass
class Route:
    """The pages to show, grouped into calls; ``reason`` says how they were chosen."""

    chunks: list[list[Page]]
    scores: dict[int, float] = field(default_factory=dict)  # page number -> BM25 score (text pages)
    terms: list[str] = field(default_factory=list)
    reason: str = "matched"  # "matched" | "no_match" (nothing matched: read from the start) | "no_text"

    @property
    def pages(self) -> list[Page]:
        return [page for chunk in self.chunks for page in chunk]


def has_text(page: Page) -> bool:
    return any(_TOKEN.search(w.text) for w in page.words)


def scores(terms: Sequence[str], pages: Sequence[Page]) -> list[float]:
    """BM25 relevance of each page to ``terms``; exactly 0.0 for a page containing none of them."""
    from rank_bm25 import BM25Plus

    corpus = [terms_of(page.text) or ["\x00"] for page in pages]  # rank-bm25 divides by length
    if not corpus or not terms:
        return [0.0] * len(corpus)
    terms = list(dict.fromkeys(stem(t) for t in terms))
    bm25 = BM25Plus(corpus)
    raw = bm25.get_scores(terms)
    # BM25Plus adds idf * delta for every term, found or not; remove that floor so "no term" is 0.
    floor = sum(bm25.idf.get(t, 0.0) * bm25.delta for t in terms)
    found = [bool(set(terms) & set(doc)) for doc in corpus]
    return [max(0.0, float(s) - floor) if hit else 0.0 for s, hit in zip(raw, found)]


def tokens_limit(budget: Budget, cost: Callable[[Page], int]) -> int | None:
    """The tokens one call may spend on pages: the budget's, or less where the cost knows the model's
    context (``tasks.pages.Cost.limit``); None: no limit."""
    limits = [n for n in (budget.tokens, getattr(cost, "limit", None)) if n is not None]
    return min(limits) if limits else None


def is_full(count: int, spent: int, price: int, budget: Budget, limit: int | None) -> bool:
    """Whether a call of ``count`` pages costing ``spent`` must close before a page costing ``price``."""
    return count > 0 and (count >= budget.pages or (limit is not None and spent + price > limit))


def chunked(pages: Sequence[Page], budget: Budget, cost: Callable[[Page], int]) -> list[list[Page]]:
    """Pack pages (most relevant first) into calls within the budget and the model's context; each call
    lists pages in page order."""
    chunks: list[list[Page]] = []
    current: list[Page] = []
    spent = 0
    limit = tokens_limit(budget, cost)
    for page in pages:
        price = cost(page)
        if is_full(len(current), spent, price, budget, limit):
            chunks.append(current)
            current, spent = [], 0
        current.append(page)
        spent += price
    if current:
        chunks.append(current)
    return [sorted(chunk, key=lambda p: p.number) for chunk in chunks]


def route(
    question: str,
    pages: Sequence[Page],
    budget: Budget = Budget(),
    cost: Callable[[Page], int] = lambda page: 0,
) -> Route:
    """Choose and group the pages worth showing the model for ``question``."""
    terms = query_terms(question)
    text_pages = [p for p in pages if has_text(p)]
    textless = [p for p in pages if not has_text(p)]
    limit = max(1, budget.evidence_pages)
    if not text_pages:
        return Route(chunked(list(pages)[:limit], budget, cost), {}, terms, "no_text")
    page_scores = scores(terms, text_pages)
    by_number = {p.number: s for p, s in zip(text_pages, page_scores)}
    ranked = sorted(zip(text_pages, page_scores), key=lambda ps: (-ps[1], ps[0].number))
    best = ranked[0][1]
    if best <= 0.0:
        # Nothing matched: the opening pages (title, abstract, summary) are the best guess.
        return Route(chunked(list(pages)[: budget.pages], budget, cost), by_number, terms, "no_match")
    chosen = [p for p, s in ranked if s >= RELATIVE_CUTOFF * best][:limit]
    anchor = chosen[0].number
    nearby = sorted(textless, key=lambda p: (abs(p.number - anchor), p.number))
    chosen += nearby[: max(0, min(MAX_TEXTLESS, limit - len(chosen)))]
    return Route(chunked(chosen, budget, cost), by_number, terms, "matched")


def matching_words(page: Page, terms: Sequence[str], limit: int = 32) -> list[Word]:
    """The page's words that contain a query term (as whole tokens), in reading order, at most ``limit``."""
    wanted = {stem(t) for t in terms}
    found = [w for w in page.words if wanted.intersection(terms_of(w.text))]
    return found[:limit]

"""``extract``: named fields out of a document as a JSON object validated against a schema.

In: fields (``--field NAME[:TYPE]``, TYPE one of string, number, date, bool, list) or a JSON Schema
file, an open Document (producer side: pages routed by the field names) and a backend. Out: the record
body -- ``data`` (the validated object), per-field evidence (page, and boxes where the value is in the
text layer), the resolution and what it cost.

The model is asked for a JSON object; its reply is parsed leniently (code fences, text around the
object). Values are validated with jsonschema; on failure the errors are fed back for ONE repair
attempt; if that fails too the source gets a "validation" error record. Nothing is ever invented:
a field the document does not give is null.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from docvision.tasks import routing
from docvision.errors import UsageError, ValidationFailed
from docvision.tasks.multipage import Usage
from docvision.tasks.pages import Chunk, model_info, resolution, routed_chunks, survey, token_cost

if TYPE_CHECKING:
    from docvision.models.base import Backend
    from docvision.run.engine import Job
    from docvision.document import Document

TYPES = {
    "string": {"type": ["string", "null"]},
    "number": {"type": ["number", "null"]},
    "date": {"type": ["string", "null"], "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    "bool": {"type": ["boolean", "null"]},
    "list": {"type": ["array", "null"]},
}
PAGES_KEY = "_pages"  # where the model names the page each field came from
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NUMBER = re.compile(r"^[-+]?[$€£¥]?\s*[-+]?\d[\d,\s]*(\.\d+)?\s*%?$")


def fields_schema(specs: list[str]) -> dict:
    """A JSON Schema from ``--field NAME[:TYPE]`` options (every field required, null when absent)."""
    properties: dict = {}
    for spec in specs:
        name, _, kind = spec.partition(":")
        name, kind = name.strip(), (kind.strip().lower() or "string")
        if not _NAME.match(name):
            raise UsageError(f"bad field name {name!r} in --field {spec!r}: use letters, digits, _ . -")
        if kind not in TYPES:
            raise UsageError(f"unknown field type {kind!r} in --field {spec!r}: use {', '.join(TYPES)}")
        if name in properties:
            raise UsageError(f"field {name!r} is given twice")
        properties[name] = {**TYPES[kind], "x-docvision-type": kind}
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def load_schema(path: Path) -> dict:
    """Read and check a JSON Schema file; its top level must be an object with properties."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the schema file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"the schema file {path} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise UsageError(f"the schema in {path} must be an object schema with \"properties\"")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise UsageError(f"the schema in {path} is not a valid JSON Schema: {exc.message}") from None
    return schema


def describe(schema: dict) -> str:
    """One line per field for the prompt: name, type, description."""
    lines = []
    for name, prop in schema["properties"].items():
        kind = prop.get("x-docvision-type") or _type_name(prop)
        hint = {"date": " (YYYY-MM-DD)", "number": " (a plain number, no currency or separators)",
                "bool": " (true or false)", "list": " (a JSON array)"}.get(kind, "")
        desc = f" -- {prop['description']}" if prop.get("description") else ""
        lines.append(f"- {name}: {kind}{hint}{desc}")
    return "\n".join(lines)


def _type_name(prop: dict) -> str:
    kind = prop.get("type", "any")
    kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k != "null"]
    return "/".join(kinds) or "any"


def extract_prompt(schema: dict, labels: list[str]) -> str:
    from docvision.tasks.multipage import pages_phrase

    names = ", ".join(schema["properties"])
    return (f"The images show {pages_phrase(labels)}. Extract these fields:\n{describe(schema)}\n\n"
            f"Reply with only a JSON object with the keys {names}, and a key \"{PAGES_KEY}\" mapping each "
            f"field to the page label it was found on. Use null for a field the pages do not give; never "
            f"guess.")


def repair_prompt(schema: dict, reply: str, problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems)
    return (f"Your previous reply was:\n{reply.strip()}\n\nIt is not valid:\n{listed}\n\n"
            f"Fields:\n{describe(schema)}\n\nReply again with only the corrected JSON object "
            f"(keys {', '.join(schema['properties'])}, plus \"{PAGES_KEY}\"). Use null where the pages do not "
            f"give a value.")


def parse_object(text: str) -> dict:
    """The first JSON object in a model's reply (inside code fences or after leading text)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for match in re.finditer(r"\{", candidate):
            try:
                value, _end = decoder.raw_decode(candidate, match.start())
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("the reply holds no JSON object")


def coerce(data: dict, schema: dict) -> dict:
    """Fix the harmless slips of --field types: "1,234.50" -> 1234.5, "yes" -> true. Nothing else."""
    fixed = dict(data)
    for name, prop in schema["properties"].items():
        kind, value = prop.get("x-docvision-type"), fixed.get(name)
        if not isinstance(value, str):
            continue
        if kind == "number" and _NUMBER.match(value.strip()):
            digits = re.sub(r"[^\d.+-]", "", value)
            try:
                fixed[name] = int(digits) if re.fullmatch(r"[-+]?\d+", digits) else float(digits)
            except ValueError:
                pass
        elif kind == "bool" and value.strip().lower() in ("true", "yes", "false", "no"):
            fixed[name] = value.strip().lower() in ("true", "yes")
    return fixed


def problems(data: dict, schema: dict) -> list[str]:
    """Validation errors as short lines, in a stable order (empty when the object is valid)."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    found = []
    for err in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        where = ".".join(map(str, err.absolute_path)) or "(object)"
        found.append(f"{where}: {err.message}")
    return found[:10]


def read_reply(text: str, schema: dict) -> tuple[dict | None, dict, list[str]]:
    """Parse, coerce and validate one reply: (data or None, the model's page claims, problems)."""
    try:
        raw = parse_object(text)
    except ValueError as exc:
        return None, {}, [str(exc)]
    claims = raw.pop(PAGES_KEY, None)
    data = coerce(raw, schema)
    return data, claims if isinstance(claims, dict) else {}, problems(data, schema)


def merge(replies: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    """Several chunks' objects into one: for each field the first non-null value, most relevant first."""
    data: dict = {}
    claims: dict = {}
    for values, pages in replies:
        for key, value in values.items():
            if data.get(key) is None and value is not None or key not in data:
                data[key] = value
                if key in pages:
                    claims[key] = pages[key]
    return data, claims


def field_evidence(data: dict, claims: dict, chunks: list[Chunk]) -> dict:
    """Per field: the page it came from (the model's claim if it names a page shown, else where the
    value's text is found in the anchors) and the boxes of that text."""
    shown = {e["label"]: e for chunk in chunks for e in chunk.evidence}
    words = {label: ws for chunk in chunks for label, ws in chunk.extra.get("words", {}).items()}
    result = {}
    for name, value in data.items():
        if value is None:
            result[name] = {"page": None}
            continue
        tokens = routing.tokenize(value if isinstance(value, str) else json.dumps(value))
        located = _locate(tokens, words)
        claimed = claims.get(name)
        page = claimed if claimed in shown else (located[0] if located else None)
        entry: dict = {"page": page}
        if located and located[0] == page:
            entry["boxes"] = located[1]
        result[name] = entry
    return result


def _locate(tokens: list[str], words: dict) -> tuple[str, list] | None:
    """The first page whose words contain the value's tokens in a row, and their boxes."""
    if not tokens:
        return None
    for label, page_words in words.items():
        texts = [routing.tokenize(t) for t, _ in page_words]
        flat = [(tok, box) for toks, (_, box) in zip(texts, page_words) for tok in toks]
        for i in range(len(flat) - len(tokens) + 1):
            if [t for t, _ in flat[i:i + len(tokens)]] == tokens:
                boxes = []
                for _, box in flat[i:i + len(tokens)]:
                    if box not in boxes:
                        boxes.append(box)
                return label, boxes
    return None


@dataclass
class ExtractTask:
    schema: dict
    hd: int = 25
    budget: routing.Budget = field(default_factory=routing.Budget)
    max_new_tokens: int = 512
    name: str = "extract"

    def queries(self) -> list[str]:
        """What routing looks for, per field: its name (split at _ . -) and description."""
        return [re.sub(r"[_.-]+", " ", name) + " " + str(prop.get("description", ""))
                for name, prop in self.schema["properties"].items()]

    def route(self, pages: list, cost) -> routing.Route:
        """The best pages for each field (fields live on different pages), packed into calls."""
        chosen: dict[int, object] = {}
        scores: dict[int, float] = {}
        terms: list[str] = []
        for query in self.queries():
            found = routing.route(query, pages, routing.Budget(pages=self.budget.pages, evidence_pages=2), cost)
            if found.reason == "matched":
                for page in found.pages:
                    chosen.setdefault(page.number, page)
                scores.update({n: max(s, scores.get(n, 0.0)) for n, s in found.scores.items()})
                terms += [t for t in found.terms if t not in terms]
        if not chosen:  # no field named anywhere in the text: read from the start, as ask does
            return routing.route(" ".join(self.queries()), pages, self.budget, cost)
        picked = list(chosen.values())[: self.budget.evidence_pages]
        return routing.Route(routing.chunked(picked, self.budget, cost), scores, terms, "matched")

    def prepare(self, document: "Document", backend: "Backend") -> Iterator[Chunk]:
        pages = survey(document)
        route = self.route(pages, token_cost(self.hd, backend))
        by_label = {page.label: page for page in route.pages}
        for chunk in routed_chunks(document, route, self.hd, backend):
            chunk.extra["words"] = {
                view.label: [(w.text, [round(v, 1) for v in view.plan.to_canvas(w.box)])
                             for w in by_label[view.label].words]
                for view in chunk.views
            }
            yield chunk

    def finish(self, job: "Job", backend: "Backend") -> dict:
        usage = Usage()
        chunks: list[Chunk] = []
        replies, failures = [], []
        for chunk in job.chunks():
            chunks.append(chunk)
            text = usage.add(backend.generate(chunk.views, extract_prompt(self.schema, chunk.labels),
                                              max_new_tokens=self.max_new_tokens)).text
            data, claims, issues = read_reply(text, self.schema)
            (failures.append((text, issues)) if data is None else replies.append((chunk.rank, data, claims, text)))
            if chunk.rank != 0:
                for view in chunk.views:
                    view.image = None  # the best chunk keeps its pixels for the repair call
        replies.sort(key=lambda r: r[0])
        data, claims = merge([(d, c) for _, d, c, _ in replies])
        issues = problems(data, self.schema) if replies else failures[0][1]
        repaired = False
        if issues:
            first = min(chunks, key=lambda c: c.rank)
            reply = replies[0][3] if replies else failures[0][0]
            text = usage.add(backend.generate(first.views, repair_prompt(self.schema, reply, issues),
                                              max_new_tokens=self.max_new_tokens)).text
            data, claims, issues = read_reply(text, self.schema)
            repaired = True
            if issues:
                raise ValidationFailed(f"the model's output does not validate after one repair attempt: "
                                       f"{'; '.join(issues[:3])}", source=job.source)
        ordered = {name: data.get(name) for name in self.schema["properties"]}
        ordered.update({k: v for k, v in data.items() if k not in ordered})
        return {
            "data": ordered,
            "evidence": field_evidence(ordered, claims, chunks),
            "repaired": repaired,
            "model": model_info(backend),
            "resolution": resolution(chunks, self.hd, backend, usage.calls, usage.visual_tokens),
            "tokens": usage.tokens(),
            "timings": usage.timings,
        }

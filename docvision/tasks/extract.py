"""``extract``: named fields out of a document as a JSON object validated against a schema.

In: fields (``--field NAME[:TYPE]``, TYPE one of string, number, date, bool, list) or a JSON Schema
file, an open Document (producer side: pages routed by the field names) and a backend. Out: the record
body -- ``data`` (the validated object), per-field evidence (page, and boxes where the value is in the
text layer), the resolution and what it cost.

The model is asked for a JSON object; its reply is parsed leniently (code fences, text around the
object). A field the document does not give is null -- whatever the schema says, null means "not
found", never a failure -- and keys the schema does not name are dropped. Only a value of the wrong
type fails validation: those fields' errors are fed back for ONE repair attempt, the fields already
found are kept; if a value is still wrong the source gets a "validation" error record whose data holds
the fields that were found (the wrong ones null). Nothing is ever invented.

A --schema file may only refer to itself (``$ref: "#/..."``): a reference to a URL or another file is
refused when the schema is read, and the validator is given no way to fetch one (docs/security.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from docvision.errors import UsageError, ValidationFailed
import docvision.tasks.routing as routing
from docvision.tasks.base import Usage, tail
from docvision.tasks.pages import Chunk, evidence_of_words, routed_chunks, survey, token_cost

if TYPE_CHECKING:
    from docvision.document import Document
    from docvision.models.base import Backend
    from docvision.run.engine import Job

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
    """Read and check a JSON Schema file (see ``check_schema``)."""
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the schema file {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"the schema file {path} is not valid JSON: {exc}") from None
    return check_schema(schema, f"the schema in {path}")


def check_schema(schema, what: str) -> dict:
    """``schema`` when it is a JSON Schema whose top level is an object with properties and whose
    references only point inside it; else a UsageError naming ``what``."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise UsageError(f"{what} must be an object schema with \"properties\"")
    outside = [ref for ref in _refs(schema) if not ref.startswith("#")]
    if outside:
        raise UsageError(f"{what} refers outside itself ($ref {outside[0]!r}); docvision resolves "
                         "only references inside the schema (\"#/$defs/...\"): copy the definition in")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise UsageError(f"{what} is not a valid JSON Schema: {exc.message}") from None
    return schema


def _refs(value) -> list[str]:
    """Every $ref string in a schema, depth first."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


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


def field_problems(data: dict, schema: dict) -> dict[str, list[str]]:
    """Per field, its validation errors as short lines (no entry: valid). Null is always valid."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for
    from referencing import Registry

    def refuse(uri: str):
        raise UsageError(f"the schema refers to {uri!r}, outside itself")

    lenient = {**schema, "required": [], "additionalProperties": True,
               "properties": {name: {"anyOf": [prop, {"type": "null"}]} if isinstance(prop, dict) else prop
                              for name, prop in schema["properties"].items()}}
    validator = validator_for(schema)(lenient, format_checker=FormatChecker(), registry=Registry(retrieve=refuse))
    found: dict[str, list[str]] = {}
    for name, value in data.items():
        if value is None or name not in schema["properties"]:
            continue
        for err in validator.iter_errors({name: value}):
            # anyOf hides the useful message; ask the property's own schema for it
            detail = [e.message for e in (err.context or []) if not _null_branch(e)] or [err.message]
            found.setdefault(name, []).append(f"{name}: {detail[0]}")
    return found


def _null_branch(err) -> bool:
    return err.validator == "type" and err.validator_value == "null"


def problems(data: dict, schema: dict) -> list[str]:
    """Validation errors as short lines, in a stable order (empty when every value is valid or null)."""
    found = field_problems(data, schema)
    return [line for name in sorted(found) for line in found[name]][:10]


def read_reply(text: str, schema: dict) -> tuple[dict | None, dict, list[str]]:
    """Parse, coerce and validate one reply: (data or None, the model's page claims, problems).

    Every field of the schema is in ``data`` (null where the reply gave none); keys the schema does not
    name are dropped.
    """
    try:
        raw = parse_object(text)
    except ValueError as exc:
        return None, {}, [str(exc)]
    claims = raw.pop(PAGES_KEY, None)
    data = coerce({name: raw.get(name) for name in schema["properties"]}, schema)
    return data, claims if isinstance(claims, dict) else {}, problems(data, schema)


def merge(replies: list[tuple[dict, dict]], schema: dict) -> tuple[dict, dict]:
    """Several chunks' objects into one: for each field the first valid non-null value, most relevant
    first (a wrong value is kept only where no chunk gave a right one, so the repair can see it)."""
    data: dict = {name: None for name in schema["properties"]}
    claims: dict = {}
    for values, pages in replies:
        wrong = field_problems(values, schema)
        for key, value in values.items():
            if value is None:
                continue
            current_ok = data[key] is not None and key not in field_problems({key: data[key]}, schema)
            if data[key] is None or (not current_ok and key not in wrong):
                data[key] = value
                if key in pages:
                    claims[key] = pages[key]
    return data, claims


def field_evidence(data: dict, claims: dict, chunks: list[Chunk]) -> list[dict]:
    """One evidence entry per field found: the page it came from (the model's claim if it names a page
    shown, else where the value's text is found in the anchors) and the boxes of that text there."""
    shown = {e["label"]: e for chunk in chunks for e in chunk.evidence}
    pages = {label: page for chunk in chunks for label, page in chunk.extra.get("pages", {}).items()}
    plans = {view.label: view.plan for chunk in chunks for view in chunk.views}
    result = []
    for name, value in data.items():
        if value is None:
            continue
        located = _locate_number(value, pages) if _is_number(value) else None
        tokens = routing.tokenize(value if isinstance(value, str) else json.dumps(value))
        located = located or _locate(tokens, pages)
        claimed = claims.get(name)
        label = claimed if claimed in shown else (located[0] if located else None)
        if label is None:
            continue
        words = located[1] if located and located[0] == label else []
        result.append(evidence_of_words(shown[label]["page"], label, plans[label], words, field=name))
    return result


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _locate_number(value: float, pages: dict) -> tuple[str, list] | None:
    """The first page with a word that reads as ``value`` ("1,234.50", "$1,234.5" for 1234.5)."""
    for label, page in pages.items():
        for word in page.words:
            text = re.sub(r"[$€£¥,\s]", "", word.text).rstrip(".;:").strip("()")
            try:
                if text and float(text) == float(value):
                    return label, [word]
            except ValueError:
                continue
    return None


def _locate(tokens: list[str], pages: dict) -> tuple[str, list] | None:
    """The first page whose words contain the value's tokens in a row, and those Words."""
    if not tokens:
        return None
    for label, page in pages.items():
        flat = [(tok, word) for word in page.words for tok in routing.tokenize(word.text)]
        for i in range(len(flat) - len(tokens) + 1):
            if [t for t, _ in flat[i:i + len(tokens)]] == tokens:
                words = []
                for _, word in flat[i:i + len(tokens)]:
                    if word not in words:
                        words.append(word)
                return label, words
    return None


@dataclass
class ExtractTask:
    schema: dict
    hd: int = 25
    budget: routing.Budget = field(default_factory=routing.Budget)
    max_new_tokens: int = 512
    system: str | None = None  # replaces the model's system prompt
    name: str = "extract"
    needs_model: bool = True

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
        route = self.route(pages, token_cost(self.hd, backend, self.max_new_tokens))
        by_label = {page.label: page for page in route.pages}
        for chunk in routed_chunks(document, route, self.hd, backend):
            chunk.extra["pages"] = {view.label: by_label[view.label] for view in chunk.views}
            yield chunk

    def finish(self, job: "Job", backend: "Backend") -> dict:
        usage = Usage()
        chunks: list[Chunk] = []
        replies, failures = [], []
        for chunk in job.chunks():
            chunks.append(chunk)
            text = self._call(backend, chunk, extract_prompt(self.schema, chunk.labels), usage)
            data, claims, issues = read_reply(text, self.schema)
            (failures.append((text, issues)) if data is None else replies.append((chunk.rank, data, claims, text)))
            if chunk.rank != 0:
                for view in chunk.views:
                    view.image = None  # the best chunk keeps its pixels for the repair call
        replies.sort(key=lambda r: r[0])
        data, claims = merge([(d, c) for _, d, c, _ in replies], self.schema)
        issues = problems(data, self.schema) if replies else failures[0][1]
        if issues:
            data, claims, issues = self._repair(backend, chunks, data, claims, issues, replies, failures, usage)
        body = {"data": data, "evidence": field_evidence(data, claims, chunks), **tail(chunks, self.hd, backend, usage)}
        if issues:
            raise ValidationFailed(f"the model's output does not validate after one repair attempt: "
                                   f"{'; '.join(issues[:3])}", source=job.source, body=body)
        return body

    def _call(self, backend: "Backend", chunk: Chunk, prompt: str, usage: Usage) -> str:
        return usage.add(backend.generate(chunk.views, prompt, max_new_tokens=self.max_new_tokens,
                                          system=self.system)).text

    def _repair(self, backend, chunks, data, claims, issues, replies, failures, usage):
        """One repair call with the problems fed back; the fields already found stay as they were."""
        first = min(chunks, key=lambda c: c.rank)
        reply = replies[0][3] if replies else failures[0][0]
        usage.repairs += 1
        text = self._call(backend, first, repair_prompt(self.schema, reply, issues), usage)
        fixed, fixed_claims, _ = read_reply(text, self.schema)
        wrong = field_problems(data, self.schema)
        for name in data:
            if fixed is not None and (data[name] is None or name in wrong) and fixed.get(name) is not None:
                data[name] = fixed[name]
                if name in fixed_claims:
                    claims[name] = fixed_claims[name]
        still = field_problems(data, self.schema)
        for name in still:
            data[name] = None  # never hand on a value of the wrong type
            claims.pop(name, None)
        issues = [line for name in sorted(still) for line in still[name]]
        if fixed is None and not replies:
            issues = issues or ["the model's replies held no JSON object"]
        return data, claims, issues

"""Lessons that carry over between studies: indexed by workload signature, weighed by their evidence.

After a study, each of its reflections (study store) becomes a lesson in the knowledge store's
``reflections`` collection: the signature (domain, pattern, hardware), the insight, the evidence trials and
measured effect, the model that wrote it and a confidence. A lesson is a *rule* only where its evidence
changed exactly one parameter against the reference it beat (the effect is isolated); a lesson written by a
tiny local model starts at low weight. A later study that measured the same single change in the same
domain confirms (confidence up) or contradicts (down) earlier rules. The curated rules in
``knowledge/rules/*.md`` are ingested on first use.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tunesmith.knowledge.vector.store import KnowledgeStore, Record

RULES_DIR = Path(__file__).with_name("rules")
TINY_MODELS = re.compile(r"smollm|135m|270m|360m|tiny|local", re.I)
TINY_START = 0.2  # confidence a tiny local model's lesson starts with
_CHANGE = re.compile(r"([A-Za-z_][\w.-]*)=(\S+?),? \(was ([^)]*)\)")


class Lesson(BaseModel):
    """A lesson with its workload signature, evidence, author model and confidence."""

    id: str
    study: str
    domain: str
    pattern: str
    hardware: str
    insight: str
    evidence: list[int] = Field(default_factory=list)
    effect: float | None = None
    model: str = "template"
    confidence: float = 0.5
    rule: bool = False
    params: dict[str, str] = Field(default_factory=dict)  # the single changed parameter of a rule: name -> value
    was: str = ""  # a rule's parameter value in the reference it beat
    role: str = ""  # the rule parameter's semantic role (agents/strategies/guided_rules.py rule key), if known
    help: str = ""  # the rule parameter's help text, if known
    confirmations: int = 0
    contradictions: int = 0

    def metadata(self) -> dict[str, Any]:
        return {**self.model_dump(exclude={"id", "insight"}), "source": f"study:{self.study}"}

    @classmethod
    def from_record(cls, r: Record) -> Lesson:
        md = dict(r.metadata)
        for key in ("evidence", "params"):
            if isinstance(md.get(key), str):
                md[key] = json.loads(md[key])
        return cls(id=r.id, insight=r.text, **{k: v for k, v in md.items() if k in cls.model_fields})


def lesson_from_reflection(r: Any, model: str) -> Lesson:
    """A study store ``Reflection`` as a lesson: a rule only when its evidence changed one parameter."""
    domain, _, pattern = r.workload.partition("/")
    changes = _CHANGE.findall(r.insight)
    rule = len(changes) == 1 and r.effect is not None
    confidence = float(r.confidence)
    if r.author == "llm" and TINY_MODELS.search(model or ""):
        confidence = min(confidence, TINY_START)
    lid = hashlib.sha256(f"{r.study}\n{r.insight}".encode()).hexdigest()[:16]
    return Lesson(id=lid, study=r.study, domain=domain, pattern=pattern or domain, hardware=r.hardware, insight=r.insight,
                  evidence=list(r.evidence), effect=r.effect, model=model if r.author == "llm" else "template",
                  confidence=round(confidence, 3), rule=rule, params={k: v for k, v, _ in changes} if rule else {},
                  was=changes[0][2] if rule else "")


def _isolated_effects(trials: list[Any]) -> dict[tuple[str, str], list[str]]:
    """Per (parameter, value): the verdicts of this study's trials that changed only it from the baseline."""
    base = next((t for t in trials if t.candidate.origin == "baseline"), None)
    if base is None:
        return {}
    out: dict[tuple[str, str], list[str]] = {}
    for t in trials:
        if t is base or t.verdict is None or t.candidate.origin == "remeasure":
            continue
        diff = [(k, v) for k, v in t.candidate.config.items() if base.candidate.config.get(k) != v]
        if len(diff) == 1:
            out.setdefault((diff[0][0], str(diff[0][1])), []).append(t.verdict.value)
    return out


def record_study(store: KnowledgeStore, study_store: Any, study: str, *, signature: str, hardware: str,
                 model: str, params: dict[str, dict[str, str]] | None = None) -> dict[str, int]:
    """Index ``study``'s reflections as lessons; confirm or contradict earlier rules of its domain.

    ``params`` (name -> {"role", "help"}) describes the study's parameters, so a rule records its
    parameter's semantic role and help text and a study of another workload can map it onto its own knobs.
    """
    lessons = [lesson_from_reflection(r, model) for r in study_store.reflections(study=study)]
    for lesson in lessons:
        if lesson.rule and params:
            info = params.get(next(iter(lesson.params)), {})
            lesson.role, lesson.help = info.get("role", ""), info.get("help", "")
    domain = signature.split("/", 1)[0]
    effects = _isolated_effects(study_store.trials(study, include_interrupted=False))
    confirmed = contradicted = 0
    earlier = [Lesson.from_record(r) for r in store.get("reflections", {"domain": domain})] if store.exists else []
    for old in earlier:
        if not old.rule or old.study == study:
            continue
        ((name, value),) = old.params.items()
        verdicts = effects.get((name, value), [])
        if "better" in verdicts:
            old.confirmations += 1
            old.confidence = round(old.confidence + (1 - old.confidence) * 0.3, 3)
            confirmed += 1
        elif "worse" in verdicts:
            old.contradictions += 1
            old.confidence = round(old.confidence * 0.6, 3)
            contradicted += 1
        else:
            continue
        store.update_metadata("reflections", old.id, {"confidence": old.confidence,
                                                      "confirmations": old.confirmations,
                                                      "contradictions": old.contradictions})
    if lessons:
        store.add("reflections", [Record(lesson.id, lesson.insight, lesson.metadata()) for lesson in lessons])
    return {"indexed": len(lessons), "confirmed": confirmed, "contradicted": contradicted}


def signature_similarity(a: str, b: str, hw_a: str = "", hw_b: str = "") -> float:
    """1 for the same domain and pattern, 0.5 for the same domain only, 0.1 otherwise; +0.2 for the same hardware."""
    da, _, pa = a.partition("/")
    db, _, pb = b.partition("/")
    sim = 1.0 if (da, pa) == (db, pb) else 0.5 if da == db else 0.1
    return min(1.0, sim + (0.2 if hw_a and hw_a == hw_b else 0.0))


def search_lessons(store: KnowledgeStore, signature: str, query: str, k: int = 5, hardware: str = "") -> list[Any]:
    """Lessons ranked by text similarity x signature similarity x confidence (as KnowledgeHit)."""
    from tunesmith.knowledge.retrieval import KnowledgeHit

    if not store.exists or store.count("reflections") == 0:
        return []
    hits = []
    for m in store.query("reflections", query, max(k * 4, 20)):
        lesson = Lesson.from_record(m.record)
        sig = signature_similarity(signature, f"{lesson.domain}/{lesson.pattern}", hardware, lesson.hardware)
        score = round(m.score * sig * (0.5 + 0.5 * lesson.confidence), 4)
        hits.append(KnowledgeHit(text=lesson.insight, source=f"reflection:{lesson.study}", score=score,
                                 citation=f"study {lesson.study}, trials {lesson.evidence}",
                                 metadata=lesson.model_dump()))
    hits.sort(key=lambda h: h.score, reverse=True)
    return hits[:k]


def list_lessons(store: KnowledgeStore) -> list[Lesson]:
    """Every stored lesson, most confident first."""
    if not store.exists:
        return []
    return sorted((Lesson.from_record(r) for r in store.get("reflections")), key=lambda x: -x.confidence)


def ensure_rules(store: KnowledgeStore) -> int:
    """Ingest the curated rules (``knowledge/rules/*.md``) if missing or changed; returns chunks added."""
    from tunesmith.knowledge.manuals.documents import read_markdown
    from tunesmith.knowledge.manuals.ingest import IngestReport, store_document

    report = IngestReport()
    for f in sorted(RULES_DIR.glob("*.md")):
        doc = read_markdown(f, f"rule:{f.stem}")
        doc.kind = "rule"
        head = f.read_text(encoding="utf-8").splitlines()[:8]
        domain = next((line.split(":", 1)[1].strip() for line in head if line.lower().startswith("domain:")), "")
        store_document(store, doc, report, meta={"domain": domain})
    return sum(report.added.values())

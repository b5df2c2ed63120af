"""Seeded generator of the embedded scheduler/assistant dataset (intents + entities, JSONL with character spans).

Each intent has hand-written phrasing templates with `{SLOT}` placeholders; every template belongs to exactly one split,
so validation and test measure generalisation to unseen phrasings, not only unseen values. Utterances add optional
slot phrases in random order, openers and closers, varied casing and a few typos (never inside an entity).

Labeling rules (kept consistent so the task is learnable):

- spans never include a preposition ("at", "on", "for", "with", "in", "to") before the value;
- TIME is a clock time ("7:30 am", "noon", "half past six", "8 in the morning"); DATE a day ("tomorrow", "next friday",
  "the 3rd of may"); DURATION a length ("10 minutes", "an hour and a half");
- PERSON is a name with its title ("dr. patel"); LOCATION a place with its article ("the lobby");
- EVENT names what is scheduled, reminded or cancelled ("budget meeting", "dentist appointment", "water the plants");
  a bare "meeting", "appointment" or "alarm" is not an entity.

Regenerate the shipped files (`training/embedded_data/`) with `python scripts/generate_embedded_data.py`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

import jinja2

DEFAULT_SEED = 2024
SPLITS = ("train", "validation", "test")
SPLIT_TEMPLATE_SHARE = {"train": 0.6, "validation": 0.2, "test": 0.2}
EXAMPLES_PER_INTENT = {"train": 380, "validation": 75, "test": 75}
MAX_WORDS = 24
EMBEDDED_DATA = Path(__file__).resolve().parents[1] / "training" / "embedded_data"
CARD_TEMPLATE = Path(__file__).with_name("data_card_template.md")
PLACEHOLDER = re.compile(r"\{([A-Z_]+)\}")

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ORDINALS = ["1st", "2nd", "3rd", "4th", "5th", "8th", "10th", "12th", "15th", "17th", "21st", "23rd", "28th", "30th"]
HOURS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]
HOUR_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def _time(rng: random.Random) -> str:
    hour = rng.choice(HOURS)
    form = rng.randrange(10)
    if form < 3:
        return f"{hour} {rng.choice(['am', 'pm', 'a.m.', 'p.m.'])}"
    if form < 5:
        return f"{hour}:{rng.choice(['00', '15', '30', '45', '05', '20', '50'])} {rng.choice(['am', 'pm'])}"
    if form == 5:
        return f"{hour}{rng.choice(['am', 'pm'])}"
    if form == 6:
        return rng.choice(["noon", "midnight", "midday"])
    if form == 7:
        return f"{rng.choice(['half past', 'quarter past', 'quarter to'])} {rng.choice(HOUR_WORDS)}"
    if form == 8:
        return f"{rng.choice(HOURS[:11])} {rng.choice(['in the morning', 'in the afternoon', 'in the evening'])}"
    return f"{rng.choice(HOUR_WORDS)} o'clock"


def _date(rng: random.Random) -> str:
    form = rng.randrange(10)
    if form < 2:
        return rng.choice(["today", "tomorrow", "the day after tomorrow", "tomorrow", "today"])
    if form < 4:
        return rng.choice(WEEKDAYS)
    if form < 6:
        return f"{rng.choice(['next', 'this', 'next', 'this coming'])} {rng.choice(WEEKDAYS)}"
    if form == 6:
        return rng.choice(["next week", "this weekend", "next weekend", "next month", "the end of the week"])
    if form == 7:
        return f"{rng.choice(MONTHS)} {rng.choice(ORDINALS)}"
    if form == 8:
        return f"the {rng.choice(ORDINALS)} of {rng.choice(MONTHS)}"
    return f"the {rng.choice(ORDINALS)}"


def _day(rng: random.Random) -> str:
    """A single day, as used after "on"."""
    form = rng.randrange(5)
    if form < 2:
        return f"{rng.choice(['', 'next ', 'this '])}{rng.choice(WEEKDAYS)}"
    if form < 4:
        return f"{rng.choice(MONTHS)} {rng.choice(ORDINALS)}"
    return f"the {rng.choice(ORDINALS)}{rng.choice(['', ' of ' + rng.choice(MONTHS)])}"


def _duration(rng: random.Random) -> str:
    form = rng.randrange(8)
    if form < 3:
        return f"{rng.choice(['2', '3', '5', '8', '10', '12', '15', '20', '25', '30', '40', '45', '90'])} minutes"
    if form == 3:
        return f"{rng.choice(['2', '3', '4', '6'])} hours"
    if form == 4:
        return rng.choice(["an hour", "half an hour", "an hour and a half", "a minute", "one hour", "a quarter hour"])
    if form == 5:
        return f"{rng.choice(['30', '45', '90', '20', '10'])} seconds"
    if form == 6:
        return f"{rng.choice(['1', '2'])} hour {rng.choice(['15', '30', '45'])} minutes"
    return f"{rng.choice(['5', '10', '15', '20', '30', '45'])} mins"


FIRST_NAMES = [
    "Sarah", "John", "Priya", "Miguel", "Aisha", "Tom", "Chen", "Olga", "Kwame", "Emma", "Lucas", "Fatima", "Noah",
    "Yuki", "Daniel", "Sofia", "Omar", "Grace", "Ivan", "Lena", "Raj", "Maya", "Ben", "Chloe", "Diego", "Hannah",
]  # fmt: skip
LAST_NAMES = ["Smith", "Patel", "Garcia", "Nguyen", "Kim", "Müller", "Okafor", "Rossi", "Cohen", "Silva", "Brown"]


def _person(rng: random.Random) -> str:
    form = rng.randrange(6)
    if form < 3:
        return rng.choice(FIRST_NAMES)
    if form < 5:
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    return f"{rng.choice(['Dr.', 'Mr.', 'Ms.', 'Professor'])} {rng.choice(LAST_NAMES)}"


def _doctor(rng: random.Random) -> str:
    return f"{rng.choice(['Dr.', 'Dr', 'Doctor'])} {rng.choice(LAST_NAMES)}"


OFFICE_LOCATIONS = [
    "the office", "the lobby", "the main office", "the cafeteria", "conference room A", "conference room B",
    "room 204", "room 12", "building 3", "the boardroom", "the break room", "the front desk", "Zoom",
    "the coffee shop on 5th street", "Starbucks",
]  # fmt: skip
CLINIC_LOCATIONS = [
    "the downtown clinic", "the city hospital", "the Main Street dental clinic", "the health center",
    "St. Mary's hospital", "the salon on Oak Avenue", "the pharmacy", "the vet clinic",
]  # fmt: skip
PLACES = ["Berlin", "London", "Madrid", "Central Park", "the gym", "the library", "the community center", "Toronto"]
LOCATIONS = OFFICE_LOCATIONS + CLINIC_LOCATIONS + PLACES
MEETING_EVENTS = [
    "budget meeting", "team standup", "project sync", "design review", "quarterly planning", "sales call",
    "job interview", "performance review", "kickoff meeting", "sprint retro", "board meeting", "client call",
    "marketing sync", "code review", "product demo", "strategy session", "lunch meeting", "weekly check-in",
]  # fmt: skip
APPOINTMENT_EVENTS = [
    "dentist appointment", "haircut", "doctor's appointment", "eye exam", "vet appointment", "massage",
    "physio session", "checkup", "blood test", "dental cleaning", "therapy session", "car service",
    "nail appointment", "flu shot", "skin check", "hearing test",
]  # fmt: skip
OTHER_EVENTS = ["yoga class", "dinner reservation", "piano lesson", "book club", "soccer practice", "flight"]
TASKS = [
    "take my medicine", "water the plants", "pay the rent", "call the bank", "buy milk", "pick up the dry cleaning",
    "submit the report", "feed the cat", "renew my passport", "book the tickets", "send the invoice",
    "charge my phone", "return the library books", "take out the trash", "back up my laptop", "stretch",
    "check the oven", "order a birthday cake", "reply to the email", "drink some water", "move the car",
]  # fmt: skip

SLOT_VALUES = {
    "TIME": _time,
    "DATE": _date,
    "DAY": _day,
    "DURATION": _duration,
    "PERSON": _person,
    "DOCTOR": _doctor,
    "LOCATION": lambda rng: rng.choice(LOCATIONS),
    "OFFICE": lambda rng: rng.choice(OFFICE_LOCATIONS + PLACES),
    "CLINIC": lambda rng: rng.choice(CLINIC_LOCATIONS),
    "MEETING": lambda rng: rng.choice(MEETING_EVENTS),
    "APPOINTMENT": lambda rng: rng.choice(APPOINTMENT_EVENTS),
    "ANY_EVENT": lambda rng: rng.choice(MEETING_EVENTS + APPOINTMENT_EVENTS + OTHER_EVENTS),
    "TASK": lambda rng: rng.choice(TASKS),
}
# placeholder -> entity label (several placeholders draw from different pools for the same label)
SLOT_LABELS = {
    "TIME": "TIME",
    "DATE": "DATE",
    "DAY": "DATE",
    "DURATION": "DURATION",
    "PERSON": "PERSON",
    "DOCTOR": "PERSON",
    "LOCATION": "LOCATION",
    "OFFICE": "LOCATION",
    "CLINIC": "LOCATION",
    "MEETING": "EVENT",
    "APPOINTMENT": "EVENT",
    "ANY_EVENT": "EVENT",
    "TASK": "EVENT",
}

TEMPLATES: dict[str, list[str]] = {
    "set_alarm": [
        "set an alarm for {TIME}",
        "wake me up at {TIME}",
        "wake me up at {TIME} {DATE}",
        "set an alarm for {TIME} {DATE}",
        "alarm at {TIME}",
        "i need an alarm at {TIME}",
        "set my alarm to {TIME}",
        "create an alarm for {TIME} on {DAY}",
        "wake me at {TIME}",
        "alarm for {TIME} please",
        "wake me up {DATE} at {TIME}",
        "i want to wake up at {TIME}",
        "new alarm for {TIME}",
        "add an alarm at {TIME}",
        "set a wake up alarm for {TIME}",
        "{TIME} alarm please",
        "make an alarm for {DATE} at {TIME}",
        "i have to be up at {TIME} {DATE}, set an alarm",
        "alarm {DATE} at {TIME}",
        "set an alarm on {DAY} for {TIME}",
        "could you wake me up {DATE} at {TIME}",
        "put an alarm in for {TIME}",
        "i need to wake up at {TIME} on {DAY}",
        "set the alarm clock for {TIME}",
        "program an alarm for {TIME}",
        "wake me up with an alarm at {TIME}",
    ],
    "set_timer": [
        "set a timer for {DURATION}",
        "start a {DURATION} timer",
        "timer for {DURATION}",
        "start a timer for {DURATION}",
        "count down {DURATION}",
        "set a countdown for {DURATION}",
        "{DURATION} timer please",
        "i need a timer for {DURATION}",
        "put a timer on for {DURATION}",
        "start counting down from {DURATION}",
        "let me know when the {DURATION} timer is done",
        "run a timer of {DURATION}",
        "set the kitchen timer to {DURATION}",
        "timer {DURATION}",
        "create a {DURATION} countdown",
        "can you start a timer for {DURATION}",
        "begin a {DURATION} countdown",
        "add a timer for {DURATION}",
        "set timer {DURATION}",
        "start a countdown of {DURATION}",
        "give me a {DURATION} timer",
        "quick timer, {DURATION}",
        "a timer for {DURATION} please",
        "make a timer for {DURATION}",
        "count down from {DURATION} for me",
    ],
    "set_reminder": [
        "remind me to {TASK}",
        "remind me to {TASK} at {TIME}",
        "remind me {DATE} to {TASK}",
        "set a reminder to {TASK}",
        "set a reminder to {TASK} {DATE} at {TIME}",
        "create a reminder to {TASK} at {TIME}",
        "don't let me forget to {TASK}",
        "remind me at {TIME} to {TASK}",
        "i need a reminder to {TASK} {DATE}",
        "add a reminder: {TASK}",
        "please remind me to {TASK} on {DAY}",
        "reminder to {TASK} at {TIME}",
        "make sure you remind me to {TASK} {DATE}",
        "remind me about my {ANY_EVENT} {DATE}",
        "set a reminder for my {ANY_EVENT} at {TIME}",
        "send me a reminder to {TASK} at {TIME}",
        "remind me on {DAY} at {TIME} to {TASK}",
        "new reminder: {TASK} {DATE}",
        "can you remind me to {TASK}",
        "give me a reminder to {TASK} at {TIME}",
        "ping me with a reminder at {TIME} to {TASK}",
        "i must not forget to {TASK}, remind me {DATE}",
        "remind me of the {ANY_EVENT} on {DAY}",
        "add a reminder to {TASK} at {TIME} {DATE}",
        "help me not forget to {TASK} at {TIME}",
    ],
    "schedule_meeting": [
        "schedule a meeting with {PERSON}",
        "schedule a meeting with {PERSON} {DATE} at {TIME}",
        "set up a {MEETING} with {PERSON}",
        "book a meeting with {PERSON} on {DAY}",
        "arrange a {MEETING} for {DATE}",
        "put a {MEETING} on my calendar for {DATE} at {TIME}",
        "schedule the {MEETING} for {TIME}",
        "i need to meet with {PERSON} {DATE}",
        "set up a call with {PERSON} at {TIME}",
        "organize a {MEETING} with {PERSON} in {OFFICE}",
        "create a meeting with {PERSON} and {PERSON}",
        "plan a {MEETING} {DATE}",
        "add a meeting with {PERSON} at {OFFICE}",
        "schedule a {DURATION} meeting with {PERSON}",
        "find time for a {MEETING} with {PERSON}",
        "hold the {MEETING} in {OFFICE} at {TIME}",
        "let's have a meeting with {PERSON} on {DAY}",
        "schedule a {MEETING} from {TIME} until {TIME}",
        "set a meeting with {PERSON} for {DATE}",
        "invite {PERSON} to a {MEETING} {DATE}",
        "put a meeting with {PERSON} on my calendar",
        "book a {MEETING} at {TIME} in {OFFICE}",
        "i want to schedule a meeting with {PERSON} at {TIME}",
        "set up a {MEETING} in {OFFICE} {DATE}",
        "get a {MEETING} on the calendar with {PERSON}",
        "i'd like to meet {PERSON} at {OFFICE} {DATE}",
    ],
    "schedule_appointment": [
        "book a {APPOINTMENT} for {DATE}",
        "make an appointment with {DOCTOR}",
        "schedule a {APPOINTMENT} at {TIME}",
        "book me a {APPOINTMENT} on {DAY} at {TIME}",
        "i need to book a {APPOINTMENT}",
        "make a {APPOINTMENT} for {DATE}",
        "get me an appointment with {DOCTOR} {DATE}",
        "schedule an appointment with {DOCTOR} at {TIME}",
        "book an appointment at {CLINIC}",
        "i want to make a {APPOINTMENT} {DATE}",
        "set up a {APPOINTMENT} at {CLINIC}",
        "can i get a {APPOINTMENT} {DATE} at {TIME}",
        "book a {APPOINTMENT} with {DOCTOR}",
        "arrange an appointment with {DOCTOR} on {DAY}",
        "reserve a {APPOINTMENT} slot for {DATE}",
        "make me an appointment for a {APPOINTMENT}",
        "schedule my {APPOINTMENT} for {DATE}",
        "book an appointment for {DATE} at {TIME}",
        "i'd like to book a {APPOINTMENT} at {CLINIC} {DATE}",
        "please make an appointment with {DOCTOR} for {TIME}",
        "get me booked for a {APPOINTMENT} on {DAY}",
        "line up a {APPOINTMENT} at {TIME}",
        "book a {APPOINTMENT} at {TIME} with {DOCTOR}",
        "i need an appointment with {DOCTOR}",
        "set up an appointment at {CLINIC} for {DATE}",
    ],
    "cancel_event": [
        "cancel my {ANY_EVENT}",
        "cancel the meeting with {PERSON}",
        "cancel my {ANY_EVENT} on {DAY}",
        "delete the {ANY_EVENT} from my calendar",
        "remove my {TIME} alarm",
        "call off the {MEETING} {DATE}",
        "cancel {DATE}'s {ANY_EVENT}",
        "i can't make the {ANY_EVENT}, cancel it",
        "clear my calendar for {DATE}",
        "drop the {MEETING} with {PERSON}",
        "cancel the alarm for {TIME}",
        "scrap my {ANY_EVENT} at {TIME}",
        "delete my reminder to {TASK}",
        "cancel my appointment with {DOCTOR}",
        "remove the {ANY_EVENT} on {DAY} at {TIME}",
        "please cancel everything {DATE}",
        "cancel the {TIME} meeting",
        "get rid of my {ANY_EVENT}",
        "delete all events on {DAY}",
        "cancel my timer",
        "cancel the reminder about the {ANY_EVENT}",
        "call off my meeting with {PERSON} {DATE}",
        "i want to cancel the {ANY_EVENT} at {LOCATION}",
        "take the {ANY_EVENT} off my calendar",
        "cancel the {ANY_EVENT} {DATE}",
        "delete the {TIME} reminder",
    ],
    "list_events": [
        "what's on my calendar {DATE}",
        "show me my schedule for {DATE}",
        "what do i have {DATE}",
        "list my meetings {DATE}",
        "do i have any meetings with {PERSON}",
        "what meetings do i have {DATE}",
        "show my appointments",
        "am i free {DATE} at {TIME}",
        "when is my {ANY_EVENT}",
        "what's my schedule like {DATE}",
        "do i have anything at {TIME} {DATE}",
        "list all my events for {DATE}",
        "show me what's coming up {DATE}",
        "what's planned for {DATE}",
        "read me my agenda for {DATE}",
        "do i have a {ANY_EVENT} {DATE}",
        "when am i meeting {PERSON}",
        "show my calendar for {DATE}",
        "what alarms do i have",
        "list my reminders",
        "which meetings are in {LOCATION} {DATE}",
        "tell me my events for {DATE}",
        "is there anything on my calendar at {TIME}",
        "what's next on my agenda",
        "what time is my {ANY_EVENT}",
        "is my {ANY_EVENT} still on for {DATE}",
        "where is my {ANY_EVENT}",
        "check if i have a {ANY_EVENT} {DATE}",
        "what appointments do i have {DATE}",
        "am i busy {DATE}",
    ],
}

# Extra slot phrases an utterance may gain (in random order), so slots combine beyond what a template spells out.
EXTRAS: dict[str, list[str]] = {
    "set_alarm": ["{DATE}", "on {DAY}"],
    "set_timer": ["starting now", "right away"],
    "set_reminder": ["at {TIME}", "{DATE}", "on {DAY}"],
    "schedule_meeting": ["at {TIME}", "{DATE}", "on {DAY}", "in {OFFICE}", "at {OFFICE}", "for {DURATION}"],
    "schedule_appointment": ["at {TIME}", "{DATE}", "on {DAY}", "at {CLINIC}", "with {DOCTOR}"],
    "cancel_event": ["{DATE}", "on {DAY}", "at {TIME}"],
    "list_events": ["{DATE}", "with {PERSON}", "at {LOCATION}"],
}
OPENERS = ["hey ", "ok ", "hi, ", "assistant, ", "um ", "hey assistant, "]
REQUEST_OPENERS = ["please ", "can you ", "could you ", "i need you to ", "would you "]
REQUEST_VERBS = {
    "set", "wake", "create", "make", "add", "remind", "schedule", "book", "cancel", "delete", "show", "list", "start",
    "put", "get", "tell", "read", "arrange", "organize", "plan", "remove", "clear", "drop", "scrap", "find", "invite",
    "reserve", "count", "run", "begin", "give", "time", "take", "call", "program", "nudge", "ping",
}  # fmt: skip
CLOSERS = [" please", " thanks", " thank you", "?", ".", " asap", "!"]
TYPO_KINDS = ("swap", "drop", "double")


def _draw_segments(template: str, extras: list[str], rng: random.Random) -> list[tuple[str, str | None]]:
    """The utterance as (text, entity label or None) segments: template + optional extras, opener and closer."""

    def labels_of(text: str) -> set[str]:
        return {SLOT_LABELS[slot] for slot in PLACEHOLDER.findall(text)}

    used = labels_of(template)
    pieces = [template]
    extras = list(extras)
    rng.shuffle(extras)
    for extra in extras[: rng.choice([0, 0, 0, 1, 1, 2])]:
        if not labels_of(extra) & used:
            pieces.append(extra)
            used |= labels_of(extra)
    text = " ".join(pieces)
    first_word = template.split()[0]
    opener_roll = rng.random()
    if opener_roll < 0.2 and first_word in REQUEST_VERBS:
        text = rng.choice(REQUEST_OPENERS) + text
    if opener_roll > 0.88:
        text = rng.choice(OPENERS) + text
    if rng.random() < 0.25:
        text += rng.choice(CLOSERS)

    segments: list[tuple[str, str | None]] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        segments.append((text[position : match.start()], None))
        slot = match.group(1)
        segments.append((SLOT_VALUES[slot](rng), SLOT_LABELS[slot]))
        position = match.end()
    segments.append((text[position:], None))
    return [(piece, label) for piece, label in segments if piece]


def _add_typo(segments: list[tuple[str, str | None]], rng: random.Random) -> list[tuple[str, str | None]]:
    """Misspell one plain word (never an entity) of four letters or more."""
    candidates = [
        (index, match)
        for index, (piece, label) in enumerate(segments)
        if label is None
        for match in re.finditer(r"[a-z]{4,}", piece)
    ]
    if not candidates:
        return segments
    index, match = rng.choice(candidates)
    word = match.group()
    at = rng.randrange(1, len(word) - 2)
    kind = rng.choice(TYPO_KINDS)
    if kind == "swap":
        typo = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    elif kind == "drop":
        typo = word[:at] + word[at + 1 :]
    else:
        typo = word[:at] + word[at] + word[at:]
    piece = segments[index][0]
    segments = list(segments)
    segments[index] = (piece[: match.start()] + typo + piece[match.end() :], None)
    return segments


def _apply_casing(text: str, rng: random.Random) -> str:
    """Mostly lowercase (voice style); sometimes as written with a capital first letter, rarely all caps."""
    roll = rng.random()
    if roll < 0.55:
        cased = text.lower()
    elif roll < 0.93:
        cased = text[:1].upper() + text[1:]
    else:
        cased = text.upper()
    if len(cased) != len(text):  # spans are computed before casing
        raise ValueError(f"Casing changed the length of {text!r}.")
    return cased


def _render(segments: list[tuple[str, str | None]], rng: random.Random) -> tuple[str, list[dict]]:
    text = ""
    entities = []
    for piece, label in segments:
        if label is not None:
            entities.append({"start": len(text), "end": len(text) + len(piece), "label": label})
        text += piece
    if "  " in text:
        raise ValueError(f"Double space in {text!r}; fix the template or value lists.")
    return _apply_casing(text, rng), entities


def assign_templates(seed: int = DEFAULT_SEED) -> dict[str, list[tuple[str, str]]]:
    """Split -> [(template id, template)]: every template lands in exactly one split, per intent."""
    rng = random.Random(seed)
    assignment: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
    for intent, templates in TEMPLATES.items():
        ids = [(f"{intent}/{number:02d}", template) for number, template in enumerate(templates)]
        rng.shuffle(ids)
        validation_size = round(len(ids) * SPLIT_TEMPLATE_SHARE["validation"])
        test_size = round(len(ids) * SPLIT_TEMPLATE_SHARE["test"])
        assignment["validation"] += ids[:validation_size]
        assignment["test"] += ids[validation_size : validation_size + test_size]
        assignment["train"] += ids[validation_size + test_size :]
    return assignment


def generate_examples(seed: int = DEFAULT_SEED) -> dict[str, list[dict]]:
    """
    Split -> records `{"text", "intent", "entities", "template"}` (`template`: the phrasing template id, which the
    shipped files leave out). Deterministic for a seed; no text repeats across the whole dataset.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    result: dict[str, list[dict]] = {}
    for split, templates in assign_templates(seed).items():
        records = []
        for intent in TEMPLATES:
            own = [
                (template_id, template) for template_id, template in templates if template_id.startswith(intent + "/")
            ]
            target = EXAMPLES_PER_INTENT[split]
            attempts = 0
            while sum(record["intent"] == intent for record in records) < target:
                attempts += 1
                if attempts > 50 * target:
                    raise RuntimeError(f"Cannot draw {target} distinct {split} utterances for {intent}.")
                template_id, template = own[attempts % len(own)]
                segments = _draw_segments(template, EXTRAS[intent], rng)
                if rng.random() < 0.08:
                    segments = _add_typo(segments, rng)
                text, entities = _render(segments, rng)
                key = text.lower()
                if key in seen or len(text.split()) > MAX_WORDS:
                    continue
                seen.add(key)
                records.append({"text": text, "intent": intent, "entities": entities, "template": template_id})
        rng.shuffle(records)
        result[split] = records
    return result


def to_jsonl(records: list[dict]) -> str:
    """The shipped JSONL: one `{"text", "intent", "entities"}` object per line."""
    lines = [
        json.dumps({key: record[key] for key in ("text", "intent", "entities")}, ensure_ascii=False)
        for record in records
    ]
    return "\n".join(lines) + "\n"


def data_card(examples: dict[str, list[dict]], seed: int) -> str:
    """DATA_CARD.md text with the counts of this generation, from `data_card_template.md`."""
    intent_counts = {split: Counter(record["intent"] for record in records) for split, records in examples.items()}
    entity_counts = {
        split: Counter(entity["label"] for record in records for entity in record["entities"])
        for split, records in examples.items()
    }
    entity_labels = sorted({label for counts in entity_counts.values() for label in counts})
    template = jinja2.Template(CARD_TEMPLATE.read_text(encoding="utf-8"), keep_trailing_newline=True)
    return template.render(
        seed=seed,
        max_words=MAX_WORDS,
        splits=SPLITS,
        templates={split: len({record["template"] for record in records}) for split, records in examples.items()},
        tables=[
            {"title": "intent", "names": list(TEMPLATES), "counts": intent_counts},
            {"title": "entity", "names": entity_labels, "counts": entity_counts},
        ],
    )


def write_dataset(out_dir: str | Path, seed: int = DEFAULT_SEED) -> dict[str, Path]:
    """Write `{train,validation,test}.jsonl` and `DATA_CARD.md` into `out_dir`; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = generate_examples(seed)
    written = {}
    for split, records in examples.items():
        written[split] = out_dir / f"{split}.jsonl"
        written[split].write_text(to_jsonl(records), encoding="utf-8", newline="\n")
    written["card"] = out_dir / "DATA_CARD.md"
    written["card"].write_text(data_card(examples, seed), encoding="utf-8", newline="\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the synthetic scheduler/assistant dataset.")
    parser.add_argument("--out", type=Path, default=EMBEDDED_DATA, help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for path in write_dataset(args.out, args.seed).values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

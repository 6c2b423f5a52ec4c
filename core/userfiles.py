"""Files users hand to DeepBeat, read with bounds: bytes up to a size, JSON up to a size and a depth.

JSON here is what people or other tools wrote (note maps, model metadata, configs beside weights).
Its nesting is bounded before the decoder sees the text (Python's decoder recurses once per level:
100,000 '[' end in RecursionError), and every failure is one line in the caller's domain error,
naming the file.
"""
import json
import os
import re

from .errors import DeepBeatError

MAX_JSON_BYTES = 8 * 1024 * 1024  # DeepBeat's own JSON files are kilobytes; a dataset summary well under 1 MiB
MAX_JSON_DEPTH = 64  # DeepBeat's files nest four levels deep at most

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def read_bounded(path, limit):
    """The bytes of the file at `path`, or None when it holds more than `limit` (a stated size is checked
    first, so a large file is refused unread); OSError as open() raises it."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size > limit:
            return None
        chunks, total = [], 0
        while chunk := file.read(min(limit + 1, 1 << 20)):  # a pipe or a device states no size
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def parse_json(text, source, error=DeepBeatError, what="JSON"):
    """The value of JSON `text`, or `error` (a DeepBeatError kind) naming `source` and what is wrong."""
    if len(text) > MAX_JSON_BYTES:
        raise error(f"{source}: {len(text)} characters of {what}; at most {MAX_JSON_BYTES} are read")
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_JSON_DEPTH:
        raise error(f"{source}: {what} nested {deepest} levels deep; at most {MAX_JSON_DEPTH} are read")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as problem:  # json.JSONDecodeError is a ValueError
        raise error(f"{source}: not valid JSON ({problem})") from None


def read_json(path, error=DeepBeatError, what="JSON file"):
    """The value of the JSON file at `path`, or `error` naming the file: missing, unreadable, too large,
    too deeply nested or not JSON."""
    try:
        data = read_bounded(path, MAX_JSON_BYTES)
    except FileNotFoundError:
        raise error(f"{path}: not found; expected the {what}") from None
    except OSError as problem:
        raise error(f"{path}: cannot read the {what} ({problem.strerror})") from None
    if data is None:
        raise error(f"{path}: larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB; expected the {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise error(f"{path}: not valid JSON (not UTF-8 text: {problem.reason} at byte {problem.start})") from None
    return parse_json(text, path, error, what)

"""iovctl's JSON vocabulary (doc/iovctl.schema.json): a validator for the
part of JSON Schema 2020-12 the file uses, in the standard library (no
python3-jsonschema on a fresh machine, and the tests need no more).

check_output(command, text) -> list of problems: the document must be JSON,
match $defs/commands/<command> (or $defs/error_document), and every key in it
anywhere must be one of $defs/keys. check_schema() -> problems of the file
itself: an object property that does not take its type from $defs/keys/<its
name> would let one key mean two things.
"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.path.join(HERE, "..", "..", "doc", "iovctl.schema.json")

with open(SCHEMA_PATH) as f:
    SCHEMA = json.load(f)
KEYS = SCHEMA["$defs"]["keys"]
COMMANDS = {k: v for k, v in SCHEMA["$defs"]["commands"].items() if k != "description"}

_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _resolve(ref):
    if not ref.startswith("#/"):
        raise ValueError(f"only local references: {ref}")
    node = SCHEMA
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validate(value, schema, where="$"):
    """The problems of value against schema, as 'path: what' strings."""
    errs = []
    if "$ref" in schema:
        errs += validate(value, _resolve(schema["$ref"]), where)
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](value) for x in types):
            return errs + [f"{where}: {json.dumps(value)[:80]} is not of type {'/'.join(types)}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errs.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errs.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{where}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{where}: {value} is above {schema['maximum']}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += validate(v, schema["items"], f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{where}: the key {k!r} is missing")
        for k, v in value.items():
            if k in props:
                errs += validate(v, props[k], f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{where}: unexpected key {k!r}")
    for sub in schema.get("allOf", []):
        errs += validate(value, sub, where)
    if "anyOf" in schema:
        branches = [validate(value, sub, where) for sub in schema["anyOf"]]
        if all(branches):
            best = min(branches, key=len)
            errs.append(f"{where}: matches none of anyOf; closest: {'; '.join(best[:3])}")
    return errs


def _walk_keys(value, where="$"):
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in KEYS:
                yield f"{where}: the key {k!r} is not in the vocabulary ($defs/keys of doc/iovctl.schema.json)"
            yield from _walk_keys(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_keys(v, f"{where}[{i}]")


def check_document(command, doc):
    if command not in COMMANDS:
        return [f"no schema for the command {command!r} in $defs/commands of doc/iovctl.schema.json"]
    is_error = isinstance(doc, dict) and set(doc) == {"error"}
    schema = {"$ref": "#/$defs/error_document"} if is_error else COMMANDS[command]
    return list(_walk_keys(doc)) + validate(doc, schema)


def check_output(command, text):
    try:
        doc = json.loads(text)
    except ValueError as e:
        return [f"not JSON ({e}): {text[:200]!r}"]
    return check_document(command, doc)


def check_schema():
    """Each object's property named k must take its type from $defs/keys/k."""
    errs = []

    def visit(node, where):
        if isinstance(node, dict):
            for k, sub in node.get("properties", {}).items():
                if not isinstance(sub, dict) or sub.get("$ref") != f"#/$defs/keys/{k}":
                    errs.append(f"{where}.properties.{k}: must refer to #/$defs/keys/{k}")
                if k not in KEYS:
                    errs.append(f"{where}.properties.{k}: not in $defs/keys")
            for k, sub in node.items():
                if k != "keys" or where != "$defs":
                    visit(sub, f"{where}.{k}" if where else k)
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                visit(sub, f"{where}[{i}]")

    visit(SCHEMA["$defs"], "$defs")
    for k, sub in KEYS.items():
        if not sub.get("description"):
            errs.append(f"$defs/keys/{k}: no description")
    return errs


# commands with subcommands ("sriov list"): as $defs/commands names them
GROUPED = {k.split()[0] for k in COMMANDS if " " in k}


def command_of(args):
    """The command an iovctl argument list runs ("list", "sriov set"), and whether it asks for JSON."""
    words, json_out, skip = [], False, False
    for a in args:
        if skip:
            skip = False
        elif a in ("-j", "--json"):
            json_out = True
        elif a == "--timeout" and not words:
            skip = True
        elif not a.startswith("-") and len(words) < (2 if words and words[0] in GROUPED else 1):
            words.append(a)
    return " ".join(words), json_out


def check_invocation(args, stdout):
    """check_output() for an iovctl run with --json; [] for a run without it or help text."""
    command, json_out = command_of(args)
    if not json_out or "--help" in args or "-h" in args or command not in COMMANDS:
        return []
    return check_output(command, stdout)

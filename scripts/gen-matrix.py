#!/usr/bin/env python3
"""Generates the differential test matrix from the DynamoDB API model.

    scripts/gen-matrix.py [MODEL_JSON] > crates/shoal-tests/tests/matrix/model.jsonl

MODEL_JSON defaults to $SHOAL_SPEC/aws-model/dynamodb-2012-08-10.json, then
/work/shared/spec/aws-model/dynamodb-2012-08-10.json. The output is committed; the test
`cargo test -p shoal-tests --test matrix` reads it (and the hand-written `rules.jsonl`).

For every operation below, starting from one valid request, it writes one case per line:
  - the valid request itself (answered);
  - each required member missing (`The parameter 'X' is required but was not specified.`);
  - each value of each top-level enum member (answered, unless a documented rule refuses the
    value in the base request's context: see CONTEXT), and one value outside the enum;
  - each min/max boundary of top-level integers, strings, lists and maps, and one past it;
  - each top-level member given a JSON value of the wrong type (`SerializationException`);
  - each value of the nested enums in NESTED_ENUMS, every legacy comparison operator with the
    number of values it takes and one more, and every operator in KeyConditions;
  - for the richer requests in RICH: each nested required member missing, each nested enum
    outside its values and each nested member of the wrong JSON type.

A case is a JSON object: `op`, `why`, `req` (the body), `want` (`ok` or an error type) and
optionally `msg` (the exact message) or `has` (a fragment of it). Strings in `req` (keys
included) may hold placeholders the test replaces: `$TABLE` (a table with a string partition key
`pk`, a number sort key `sk` and a global index `by_g` on `g`), `$ARN` (its ARN), `$NEW` (an unused
table name), `$SCRATCH` (a new table with partition key `pk`, created for the case).
"""

import json
import os
import sys

OPS = {
    "CreateTable": {
        "TableName": "$NEW",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    },
    "DescribeTable": {"TableName": "$TABLE"},
    "ListTables": {},
    "DeleteTable": {"TableName": "$SCRATCH"},
    "UpdateTable": {"TableName": "$SCRATCH", "DeletionProtectionEnabled": False},
    "PutItem": {
        "TableName": "$TABLE",
        "Item": {"pk": {"S": "p"}, "sk": {"N": "1"}, "g": {"S": "x"}},
    },
    "GetItem": {"TableName": "$TABLE", "Key": {"pk": {"S": "p"}, "sk": {"N": "1"}}},
    "UpdateItem": {
        "TableName": "$TABLE",
        "Key": {"pk": {"S": "p"}, "sk": {"N": "1"}},
        "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"N": "1"}},
    },
    "DeleteItem": {"TableName": "$TABLE", "Key": {"pk": {"S": "gone"}, "sk": {"N": "1"}}},
    "Query": {
        "TableName": "$TABLE",
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p"}},
    },
    "Scan": {"TableName": "$TABLE"},
    "BatchGetItem": {
        "RequestItems": {"$TABLE": {"Keys": [{"pk": {"S": "p"}, "sk": {"N": "1"}}]}}
    },
    "BatchWriteItem": {
        "RequestItems": {
            "$TABLE": [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": "1"}}}}]
        }
    },
    "TagResource": {"ResourceArn": "$ARN", "Tags": [{"Key": "k", "Value": "v"}]},
    "UntagResource": {"ResourceArn": "$ARN", "TagKeys": ["k"]},
    "ListTagsOfResource": {"ResourceArn": "$ARN"},
    "DescribeEndpoints": {},
    "DescribeLimits": {},
}

# Members the model lists that Shoal refuses (docs/COMPATIBILITY.md): not generated here, the
# hand-written rules.jsonl has their cases.
UNSUPPORTED = {
    "CreateTable": {
        "StreamSpecification", "WarmThroughput", "ResourcePolicy", "OnDemandThroughput",
        "GlobalTableSourceArn", "GlobalTableSettingsReplicationMode", "VectorIndexes",
    },
    "UpdateTable": {
        "StreamSpecification", "ReplicaUpdates", "MultiRegionConsistency",
        "GlobalTableWitnessUpdates", "OnDemandThroughput", "WarmThroughput",
        "GlobalTableSettingsReplicationMode", "DisassociationProtectionEnabled",
        "VectorIndexUpdates",
    },
}

# Enum values that a documented rule refuses in the base request's context:
# (op, member, value) -> (want, message fragment or None).
CONTEXT = {}
for op in ("PutItem", "DeleteItem"):
    # PutItem.md / DeleteItem.md: only NONE and ALL_OLD.
    for value in ("UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"):
        CONTEXT[(op, "ReturnValues", value)] = ("ValidationException", None)
for op, member in (("PutItem", "Expected"), ("DeleteItem", "Expected"), ("Scan", "ScanFilter")):
    # LegacyConditionalParameters.ConditionalOperator.md: an operator joins conditions.
    for value in ("AND", "OR"):
        CONTEXT[(op, "ConditionalOperator", value)] = (
            "ValidationException",
            f"ConditionalOperator can only be used when {member} is specified",
        )
for op in ("UpdateItem", "Query"):
    # The base requests use expressions, and a legacy parameter may not join them.
    for value in ("AND", "OR"):
        CONTEXT[(op, "ConditionalOperator", value)] = (
            "ValidationException",
            "Can not use both expression and non-expression parameters in the same request",
        )
for op in ("Query", "Scan"):
    # Select: ALL_PROJECTED_ATTRIBUTES only on an index; SPECIFIC_ATTRIBUTES names attributes.
    CONTEXT[(op, "Select", "ALL_PROJECTED_ATTRIBUTES")] = ("ValidationException", None)
    CONTEXT[(op, "Select", "SPECIFIC_ATTRIBUTES")] = ("ValidationException", None)
# BillingMode PROVISIONED needs ProvisionedThroughput (CreateTable.md, UpdateTable.md).
CONTEXT[("CreateTable", "BillingMode", "PROVISIONED")] = ("ValidationException", None)
CONTEXT[("UpdateTable", "BillingMode", "PROVISIONED")] = ("ValidationException", None)

# Members needed beside a boundary value: (op, member) -> extra members.
BOUNDARY_CONTEXT = {
    ("Scan", "Segment"): {"TotalSegments": 1000000},
    ("Scan", "TotalSegments"): {"Segment": 0},
}

# What a valid boundary value of a member is answered with, when not `ok`.
BOUNDARY_ANSWER = {
    "IndexName": ("ValidationException", "The table does not have the specified index"),
}

JSON_MEMBER = {
    "string": "String", "boolean": "Boolean", "integer": "Integer", "long": "Long",
    "list": "List", "map": "Map", "structure": "Structure",
}


def field(member):
    return member[0].lower() + member[1:]


def wrong_value(kind):
    """A JSON value of the wrong type for a member of this model type."""
    return {
        "string": 5, "boolean": "yes", "integer": "ten", "long": "ten",
        "list": "x", "map": "x", "structure": "x", "blob": 5,
    }[kind]


def case(op, why, req, want="ok", msg=None, has=None):
    c = {"op": op, "why": why, "req": req, "want": want}
    if msg is not None:
        c["msg"] = msg
    if has is not None:
        c["has"] = has
    return c


def with_member(base, member, value, extra=None):
    req = dict(base)
    req[member] = value
    for k, v in (extra or {}).items():
        req[k] = v
    return req


def boundary_cases(op, base, member, shape):
    kind = shape["type"]
    out = []
    lo, hi = shape.get("min"), shape.get("max")
    extra = BOUNDARY_CONTEXT.get((op, member))
    f = field(member)
    if kind in ("integer", "long"):
        if lo is not None:
            ok_want = BOUNDARY_ANSWER.get(member, ("ok", None))
            out.append(case(op, f"{member} at its minimum {lo}", with_member(base, member, lo, extra),
                            ok_want[0], has=ok_want[1]))
            out.append(case(op, f"{member} below its minimum", with_member(base, member, lo - 1, extra),
                            "ValidationException",
                            has=f"Value '{lo - 1}' at '{f}' failed to satisfy constraint: "
                                f"Member must have value greater than or equal to {lo}"))
        if hi is not None:
            out.append(case(op, f"{member} at its maximum {hi}", with_member(base, member, hi, extra)))
            out.append(case(op, f"{member} above its maximum", with_member(base, member, hi + 1, extra),
                            "ValidationException",
                            has=f"Value '{hi + 1}' at '{f}' failed to satisfy constraint: "
                                f"Member must have value less than or equal to {hi}"))
    elif kind == "string" and "enum" not in shape:
        if member in ("TableName",):
            # Names of existing tables are in the base requests; only the refusals here.
            if lo:
                out.append(case(op, f"{member} shorter than {lo}", with_member(base, member, "x" * (lo - 1)),
                                "ValidationException"))
            if hi:
                out.append(case(op, f"{member} longer than {hi}", with_member(base, member, "x" * (hi + 1)),
                                "ValidationException"))
            return out
        if lo and member != "ResourceArn":
            want, has = BOUNDARY_ANSWER.get(member, ("ok", None))
            out.append(case(op, f"{member} of the minimum length {lo}", with_member(base, member, "a" * lo),
                            want, has=has))
        if lo:
            out.append(case(op, f"{member} shorter than {lo}", with_member(base, member, "a" * (lo - 1)),
                            "ValidationException"))
        if hi:
            out.append(case(op, f"{member} longer than {hi}", with_member(base, member, "a" * (hi + 1)),
                            "ValidationException"))
    elif kind == "list" and lo:
        out.append(case(op, f"{member} empty", with_member(base, member, []), "ValidationException"))
    elif kind == "map" and lo and member == "RequestItems":
        out.append(case(op, f"{member} empty", with_member(base, member, {}), "ValidationException",
                        has="requestItems"))
        template = next(iter(base[member].values()))
        many = {f"tbl{i:03}": template for i in range(hi + 1)}
        out.append(case(op, f"{member} with {hi + 1} tables", with_member(base, member, many),
                        "ValidationException"))
    return out


def set_path(req, path, value):
    """A deep copy of `req` with the member at `path` (keys and list indexes) set to `value`."""
    req = json.loads(json.dumps(req))
    node = req
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return req


# Nested enum members: (op, base request, path of the member, model shape, model field path,
# {value: (want, fragment)} for values a documented rule refuses or that need other members).
NESTED_ENUMS = [
    ("CreateTable", OPS["CreateTable"], ["AttributeDefinitions", 0, "AttributeType"],
     "ScalarAttributeType", "attributeDefinitions.1.member.attributeType", {}),
    ("CreateTable", OPS["CreateTable"], ["KeySchema", 0, "KeyType"], "KeyType",
     "keySchema.1.member.keyType",
     # CreateTable.md: a key schema has exactly one HASH element, first.
     {"RANGE": ("ValidationException", None)}),
    ("CreateTable", {
        **OPS["CreateTable"],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": "gix", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}],
    }, ["GlobalSecondaryIndexes", 0, "Projection", "ProjectionType"], "ProjectionType",
     "globalSecondaryIndexes.1.member.projection.projectionType",
     # GSI.md: INCLUDE names the NonKeyAttributes it projects.
     {"INCLUDE": ("ValidationException", None)}),
    ("UpdateItem", {
        "TableName": "$TABLE", "Key": {"pk": {"S": "au"}, "sk": {"N": "1"}},
        "AttributeUpdates": {"v": {"Action": "PUT", "Value": {"N": "1"}}},
    }, ["AttributeUpdates", "v", "Action"], "AttributeAction",
     # LegacyConditionalParameters.AttributeUpdates.md: DELETE with a value only for sets.
     "attributeUpdates.v.member.action", {"DELETE": ("ValidationException", None)}),
]

# LegacyConditionalParameters.Conditions.md: how many values each comparison operator takes.
OPERATOR_VALUES = {
    "EQ": 1, "NE": 1, "LE": 1, "LT": 1, "GE": 1, "GT": 1, "NOT_NULL": 0, "NULL": 0,
    "CONTAINS": 1, "NOT_CONTAINS": 1, "BEGINS_WITH": 1, "IN": 2, "BETWEEN": 2,
}


def nested_cases(model):
    shapes = model["shapes"]
    out = []
    for op, base, path, shape, fld, refused in NESTED_ENUMS:
        for value in shapes[shape]["enum"]:
            want, has = refused.get(value, ("ok", None))
            out.append(case(op, f"{'.'.join(map(str, path))} = {value}",
                            set_path(base, path, value), want, has=has))
        out.append(case(op, f"{'.'.join(map(str, path))} outside its enum",
                        set_path(base, path, "BOGUS"), "ValidationException",
                        has=f"Value 'BOGUS' at '{fld}' failed to satisfy constraint: "
                            "Member must satisfy enum value set: ["))
    # Every comparison operator of the legacy filters, with the values it takes, and one more.
    for value in shapes["ComparisonOperator"]["enum"]:
        count = OPERATOR_VALUES[value]
        values = [{"S": f"v{i}"} for i in range(count)]
        cond = {"ComparisonOperator": value}
        if values:
            cond["AttributeValueList"] = values
        out.append(case("Scan", f"ScanFilter {value} with {count} values",
                        {"TableName": "$TABLE", "ScanFilter": {"v": cond}}))
        if value != "IN":
            extra = dict(cond, AttributeValueList=values + [{"S": "extra"}])
            out.append(case("Scan", f"ScanFilter {value} with {count + 1} values",
                            {"TableName": "$TABLE", "ScanFilter": {"v": extra}},
                            "ValidationException",
                            has=f"Invalid number of argument(s) for the {value} ComparisonOperator"))
    out.append(case("Scan", "ScanFilter with an operator outside the enum",
                    {"TableName": "$TABLE", "ScanFilter": {"v": {"ComparisonOperator": "BOGUS",
                                                                "AttributeValueList": [{"S": "x"}]}}},
                    "ValidationException"))
    # KeyConditions.md: only EQ on the partition key.
    for value in shapes["ComparisonOperator"]["enum"]:
        count = max(OPERATOR_VALUES[value], 1 if value not in ("NULL", "NOT_NULL") else 0)
        cond = {"ComparisonOperator": value}
        if count:
            cond["AttributeValueList"] = [{"S": f"p{i}"} for i in range(count)]
        want = "ok" if value == "EQ" else "ValidationException"
        out.append(case("Query", f"KeyConditions {value} on the partition key",
                        {"TableName": "$TABLE", "KeyConditions": {"pk": cond}}, want))
    return out


# Richer valid requests whose nested members the walk below goes through.
RICH = [
    ("CreateTable", {
        "TableName": "$NEW",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "N"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "LocalSecondaryIndexes": [{
            "IndexName": "lix",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "g", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["v"]}}],
        "GlobalSecondaryIndexes": [{
            "IndexName": "gix", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}],
        "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        "Tags": [{"Key": "k", "Value": "v"}],
    }),
    ("UpdateTable", {
        "TableName": "$SCRATCH",
        "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": {
            "IndexName": "gix", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}}],
    }),
    ("PutItem", {
        "TableName": "$TABLE", "Item": {"pk": {"S": "rich"}, "sk": {"N": "1"}},
        "Expected": {"v": {"ComparisonOperator": "NULL"}},
    }),
    ("UpdateItem", {
        "TableName": "$TABLE", "Key": {"pk": {"S": "rich"}, "sk": {"N": "2"}},
        "AttributeUpdates": {"v": {"Action": "PUT", "Value": {"S": "x"}}},
        "Expected": {"w": {"Exists": False}},
    }),
    ("Query", {
        "TableName": "$TABLE",
        "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
        "QueryFilter": {"v": {"ComparisonOperator": "NOT_NULL"}},
    }),
    ("BatchGetItem", {
        "RequestItems": {"$TABLE": {
            "Keys": [{"pk": {"S": "p"}, "sk": {"N": "1"}}],
            "ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": "v"},
            "ConsistentRead": True}},
    }),
    ("BatchWriteItem", {
        "RequestItems": {"$TABLE": [{"DeleteRequest": {"Key": {"pk": {"S": "b"}, "sk": {"N": "1"}}}}]},
    }),
]

# Nested members whose removal or change another documented rule answers first.
NESTED_SKIP = {
    # An index's key schema, projection and throughput interact; their enums are covered above.
    "ProvisionedThroughput",
}


def walk(model, op, base):
    """Nested cases of a valid request: each required nested member missing, each nested enum
    outside its values, each nested member of the wrong JSON type."""
    shapes = model["shapes"]
    out = []

    def visit(value, shape_name, path, fld):
        shape = shapes[shape_name]
        kind = shape["type"]
        if shape_name == "AttributeValue":
            return
        if kind == "structure" and isinstance(value, dict):
            for member in shape.get("required", []):
                if member in value and path:
                    req = json.loads(json.dumps(base))
                    node = req
                    for step in path:
                        node = node[step]
                    del node[member]
                    out.append(case(op, f"nested required {'.'.join(map(str, path + [member]))} missing",
                                    req, "ValidationException"))
            for member, ref in shape["members"].items():
                if member not in value or not path or member in NESTED_SKIP:
                    if member in value and member not in NESTED_SKIP:
                        visit(value[member], ref["shape"], path + [member],
                              f"{fld}.{member[0].lower() + member[1:]}" if fld else
                              member[0].lower() + member[1:])
                    continue
                sub = shapes[ref["shape"]]
                child_fld = f"{fld}.{member[0].lower() + member[1:]}"
                where = ".".join(map(str, path + [member]))
                if sub["type"] in JSON_MEMBER and ref["shape"] != "AttributeValue":
                    out.append(case(op, f"nested {where} of the wrong JSON type ({sub['type']})",
                                    set_path(base, path + [member], wrong_value(sub["type"])),
                                    "SerializationException"))
                if "enum" in sub:
                    out.append(case(op, f"nested {where} outside its enum",
                                    set_path(base, path + [member], "BOGUS"), "ValidationException",
                                    has=f"Value 'BOGUS' at '{child_fld}' failed to satisfy constraint: "
                                        "Member must satisfy enum value set: ["))
                visit(value[member], ref["shape"], path + [member], child_fld)
        elif kind == "list" and isinstance(value, list) and value:
            visit(value[0], shape["member"]["shape"], path + [0], f"{fld}.1.member")
        elif kind == "map" and isinstance(value, dict) and value:
            key = next(iter(value))
            visit(value[key], shape["value"]["shape"], path + [key], f"{fld}.{key}.member")

    visit(base, model["operations"][op]["input"]["shape"], [], "")
    return out


def operation_cases(model, op, base):
    shapes = model["shapes"]
    input_shape = shapes[model["operations"][op]["input"]["shape"]]
    members = input_shape["members"]
    out = [case(op, "the valid base request", base)]
    for member in input_shape.get("required", []):
        req = {k: v for k, v in base.items() if k != member}
        out.append(case(op, f"required {member} missing", req, "ValidationException",
                        msg=f"The parameter '{member}' is required but was not specified."))
    for member, ref in members.items():
        if member in UNSUPPORTED.get(op, set()):
            continue
        shape = shapes[ref["shape"]]
        if "enum" in shape:
            for value in shape["enum"]:
                want, has = CONTEXT.get((op, member, value), ("ok", None))
                out.append(case(op, f"{member} = {value}", with_member(base, member, value), want,
                                has=has))
            out.append(case(op, f"{member} outside its enum", with_member(base, member, "BOGUS"),
                            "ValidationException",
                            has=f"Value 'BOGUS' at '{field(member)}' failed to satisfy constraint: "
                                "Member must satisfy enum value set: ["))
        out.extend(boundary_cases(op, base, member, shape))
        out.append(case(op, f"{member} of the wrong JSON type ({shape['type']})",
                        with_member(base, member, wrong_value(shape["type"])),
                        "SerializationException"))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else None
    if path is None:
        spec = os.environ.get("SHOAL_SPEC", "/work/shared/spec")
        path = os.path.join(spec, "aws-model", "dynamodb-2012-08-10.json")
    with open(path) as f:
        model = json.load(f)
    cases = [c for op, base in OPS.items() for c in operation_cases(model, op, base)]
    cases += nested_cases(model)
    for op, base in RICH:
        cases.append(case(op, "a valid request with nested members", base))
        cases += walk(model, op, base)
    for c in cases:
        print(json.dumps(c, separators=(",", ":")))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Smoke test: a fresh `shoal` driven by the real AWS CLI and boto3.
#
# Installs boto3 and the AWS CLI into a virtualenv (.venv, reused between runs), builds the
# current tree, starts a server on a free port with a fresh data directory, and runs
# create/put/get/update/delete/describe/list round trips, PartiQL (execute-statement,
# execute_transaction), transactions (transact-write-items, transact-get-items) and DynamoDB
# Streams (`aws dynamodbstreams` and boto3's "dynamodbstreams" client), asserting every output. The server also serves HTTPS (`--tls self-signed`): the AWS CLI (`--ca-bundle`)
# and boto3 (`verify=`) use the certificate file it prints, and its printed fingerprint must
# match the certificate's SHA-256.
# Prints "smoke: N passed, M failed" and exits non-zero on any failure.
#
# Environment: SHOAL_SMOKE_RELEASE=1 builds with --release; SHOAL_SMOKE_VENV picks the venv dir.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/       /'; return 0; }

# --- Python tools -------------------------------------------------------------------------
VENV=${SHOAL_SMOKE_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "smoke: creating virtualenv in $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Some distributions ship python3 without the venv module; virtualenv works there.
        rm -rf "$VENV"
        python3 -m pip install --quiet --user virtualenv
        python3 -m virtualenv --quiet "$VENV"
    fi
fi
if ! "$VENV/bin/python" -c 'import boto3' 2>/dev/null || [ ! -x "$VENV/bin/aws" ]; then
    echo "smoke: installing boto3 and awscli"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check boto3 awscli
fi
PY="$VENV/bin/python"
AWS="$VENV/bin/aws"

# --- Build --------------------------------------------------------------------------------
PROFILE_FLAG=()
PROFILE_DIR=debug
if [ "${SHOAL_SMOKE_RELEASE:-0}" = 1 ]; then
    PROFILE_FLAG=(--release)
    PROFILE_DIR=release
fi
echo "smoke: building shoal ($PROFILE_DIR)"
cargo build --quiet -p shoal "${PROFILE_FLAG[@]}"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/$PROFILE_DIR/shoal"

# --- Server -------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shoal-smoke.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port)
TLS_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
export SHOAL_ADMIN_ACCESS_KEY_ID=AKIDSMOKETEST0000001
export SHOAL_ADMIN_SECRET_ACCESS_KEY=smoke-secret-0000000000000000000000000000
"$BIN" start --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --keys-dir "$WORK/keys" \
    --tls self-signed --tls-listen "127.0.0.1:$TLS_PORT" >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
SERVER_PID=$!

echo "smoke: waiting for $ENDPOINT"
if ! "$PY" - "$ENDPOINT" <<'EOF'
import sys, time, urllib.request
deadline = time.time() + 60
while time.time() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1] + "/", timeout=2) as r:
            if r.status == 200 and r.read() == b"healthy":
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
then
    echo "smoke: server did not become healthy; stderr:"
    cat "$WORK/stderr.log"
    exit 1
fi

# Isolate the AWS tools from any local configuration.
export AWS_ACCESS_KEY_ID=$SHOAL_ADMIN_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$SHOAL_ADMIN_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_PAGER=""
unset AWS_SESSION_TOKEN AWS_PROFILE

# check NAME PYTHON_ASSERTION -- COMMAND...: runs COMMAND, then evaluates the assertion with
# `out` bound to its parsed JSON stdout (or None when empty) and `text` to raw stdout.
check() {
    local name=$1 assertion=$2
    shift 3
    local out
    if ! out=$("$@" 2>"$WORK/cmd.err"); then
        fail "$name" "command failed: $* $(cat "$WORK/cmd.err")"
        return 0
    fi
    if "$PY" -c '
import json, sys
text = sys.stdin.read()
out = json.loads(text) if text.strip() else None
ok = eval(sys.argv[1])
sys.exit(0 if ok else 1)
' "$assertion" <<<"$out"; then
        pass "$name"
    else
        fail "$name" "assertion: $assertion
output: $out"
    fi
}

# check_fails NAME EXPECTED_TEXT -- COMMAND...: COMMAND must fail with EXPECTED_TEXT in stderr.
check_fails() {
    local name=$1 expected=$2
    shift 3
    if "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err"; then
        fail "$name" "command succeeded but should have failed"
    elif grep -q "$expected" "$WORK/cmd.err"; then
        pass "$name"
    else
        fail "$name" "expected '$expected' in: $(cat "$WORK/cmd.err")"
    fi
}

DDB=("$AWS" dynamodb --endpoint-url "$ENDPOINT" --output json)

# --- AWS CLI ------------------------------------------------------------------------------
echo "smoke: aws cli"
check "cli create-table" 'out["TableDescription"]["TableName"] == "smoke_cli"' -- \
    "${DDB[@]}" create-table --table-name smoke_cli \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=N \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST
check "cli wait table-exists" 'True' -- \
    "${DDB[@]}" wait table-exists --table-name smoke_cli
check "cli put-item" 'out is None or "Attributes" not in out' -- \
    "${DDB[@]}" put-item --table-name smoke_cli \
    --item '{"pk":{"S":"user#1"},"sk":{"N":"1"},"name":{"S":"Ada"},"tags":{"SS":["a","b"]},"big":{"N":"12345678901234567890123456789012345678"}}'
check "cli get-item" 'out["Item"]["name"] == {"S": "Ada"} and out["Item"]["big"] == {"N": "12345678901234567890123456789012345678"} and sorted(out["Item"]["tags"]["SS"]) == ["a", "b"]' -- \
    "${DDB[@]}" get-item --table-name smoke_cli --consistent-read \
    --key '{"pk":{"S":"user#1"},"sk":{"N":"1"}}'
check "cli update-item" 'out["Attributes"]["name"] == {"S": "Ada Lovelace"} and out["Attributes"]["visits"] == {"N": "1"} and "tags" not in out["Attributes"]' -- \
    "${DDB[@]}" update-item --table-name smoke_cli \
    --key '{"pk":{"S":"user#1"},"sk":{"N":"1"}}' \
    --update-expression 'SET #n = :n, visits = :one REMOVE tags' \
    --expression-attribute-names '{"#n":"name"}' \
    --expression-attribute-values '{":n":{"S":"Ada Lovelace"},":one":{"N":"1"}}' \
    --return-values ALL_NEW
check_fails "cli conditional put refused" "ConditionalCheckFailedException" -- \
    "${DDB[@]}" put-item --table-name smoke_cli \
    --item '{"pk":{"S":"user#1"},"sk":{"N":"1"}}' \
    --condition-expression 'attribute_not_exists(pk)'
check "cli describe-table" 'out["Table"]["TableStatus"] == "ACTIVE" and out["Table"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}] and out["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" and out["Table"]["TableArn"].endswith(":table/smoke_cli")' -- \
    "${DDB[@]}" describe-table --table-name smoke_cli
check "cli list-tables" '"smoke_cli" in out["TableNames"]' -- \
    "${DDB[@]}" list-tables
check "cli delete-item" 'out["Attributes"]["name"] == {"S": "Ada Lovelace"}' -- \
    "${DDB[@]}" delete-item --table-name smoke_cli \
    --key '{"pk":{"S":"user#1"},"sk":{"N":"1"}}' --return-values ALL_OLD
check "cli get-item after delete" 'out is None or "Item" not in out' -- \
    "${DDB[@]}" get-item --table-name smoke_cli --consistent-read \
    --key '{"pk":{"S":"user#1"},"sk":{"N":"1"}}'
check_fails "cli wrong secret refused" "InvalidSignatureException" -- \
    env AWS_SECRET_ACCESS_KEY=wrong-secret "${DDB[@]}" list-tables
check_fails "cli unknown table" "ResourceNotFoundException" -- \
    "${DDB[@]}" describe-table --table-name no_such_table
# PartiQL and transactions.
check "cli execute-statement INSERT with parameters" 'out is None or out.get("Items", []) == []' -- \
    "${DDB[@]}" execute-statement \
    --statement "INSERT INTO smoke_cli VALUE {'pk': ?, 'sk': ?, 'name': ?}" \
    --parameters '[{"S":"user#2"},{"N":"2"},{"S":"Grace"}]'
check "cli execute-statement SELECT" 'out["Items"] == [{"pk": {"S": "user#2"}, "sk": {"N": "2"}, "name": {"S": "Grace"}}]' -- \
    "${DDB[@]}" execute-statement --consistent-read \
    --statement 'SELECT * FROM "smoke_cli" WHERE pk = ? AND sk >= ?' \
    --parameters '[{"S":"user#2"},{"N":"1"}]'
check_fails "cli execute-statement INSERT of an existing key" "DuplicateItemException" -- \
    "${DDB[@]}" execute-statement \
    --statement "INSERT INTO smoke_cli VALUE {'pk': 'user#2', 'sk': 2}"
check "cli transact-write-items" 'out is None or "ConsumedCapacity" not in out' -- \
    "${DDB[@]}" transact-write-items --transact-items '[
        {"Put": {"TableName": "smoke_cli", "Item": {"pk": {"S": "user#3"}, "sk": {"N": "3"}, "name": {"S": "Alan"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": "smoke_cli", "Key": {"pk": {"S": "user#2"}, "sk": {"N": "2"}},
                    "UpdateExpression": "SET visits = :one", "ConditionExpression": "#n = :g",
                    "ExpressionAttributeNames": {"#n": "name"},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":g": {"S": "Grace"}}}},
        {"Delete": {"TableName": "smoke_cli", "Key": {"pk": {"S": "nobody"}, "sk": {"N": "9"}}}}]'
check "cli transact-get-items" 'out["Responses"] == [{"Item": {"pk": {"S": "user#2"}, "sk": {"N": "2"}, "name": {"S": "Grace"}, "visits": {"N": "1"}}}, {"Item": {"name": {"S": "Alan"}}}, {}]' -- \
    "${DDB[@]}" transact-get-items --transact-items '[
        {"Get": {"TableName": "smoke_cli", "Key": {"pk": {"S": "user#2"}, "sk": {"N": "2"}}}},
        {"Get": {"TableName": "smoke_cli", "Key": {"pk": {"S": "user#3"}, "sk": {"N": "3"}}, "ProjectionExpression": "#n",
                 "ExpressionAttributeNames": {"#n": "name"}}},
        {"Get": {"TableName": "smoke_cli", "Key": {"pk": {"S": "nobody"}, "sk": {"N": "0"}}}}]'
check_fails "cli transact-write-items canceled by a condition" "TransactionCanceledException" -- \
    "${DDB[@]}" transact-write-items --transact-items '[
        {"Delete": {"TableName": "smoke_cli", "Key": {"pk": {"S": "user#3"}, "sk": {"N": "3"}}}},
        {"ConditionCheck": {"TableName": "smoke_cli", "Key": {"pk": {"S": "user#2"}, "sk": {"N": "2"}},
                            "ConditionExpression": "visits > :v", "ExpressionAttributeValues": {":v": {"N": "5"}}}}]'
check "cli execute-transaction reads (the canceled delete did nothing)" 'out["Responses"] == [{"Item": {"name": {"S": "Alan"}}}, {"Item": {"visits": {"N": "1"}}}]' -- \
    "${DDB[@]}" execute-transaction --transact-statements '[
        {"Statement": "SELECT name FROM smoke_cli WHERE pk = ? AND sk = 3", "Parameters": [{"S": "user#3"}]},
        {"Statement": "SELECT visits FROM smoke_cli WHERE pk = '"'user#2'"' AND sk = 2"}]'
check "cli delete-table" 'out["TableDescription"]["TableName"] == "smoke_cli"' -- \
    "${DDB[@]}" delete-table --table-name smoke_cli

# --- boto3 --------------------------------------------------------------------------------
echo "smoke: boto3"
if BOTO_OUT=$("$PY" - "$ENDPOINT" <<'EOF' 2>&1
import sys, time
from decimal import Decimal
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
res = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
results = []

def check(name, cond):
    results.append((name, bool(cond)))
    print(("  ok   " if cond else "  FAIL ") + name)

def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None

ddb.create_table(
    TableName="smoke_boto",
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    BillingMode="PAY_PER_REQUEST",
    Tags=[{"Key": "env", "Value": "smoke"}],
)
ddb.get_waiter("table_exists").wait(TableName="smoke_boto", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
table = res.Table("smoke_boto")
check("boto3 create-table active", table.table_status == "ACTIVE")

item = {
    "id": "doc-1",
    "price": Decimal("19.99"),
    "huge": Decimal("1E+37"),
    "tiny": Decimal("-1E-130"),
    "payload": b"\x00\x01\xff",
    "flags": {"on": True, "off": False, "nothing": None},
    "list": [1, "two", [3]],
    "strings": {"x", "y"},
    "numbers": {Decimal(1), Decimal("2.5")},
}
table.put_item(Item=item)
got = table.get_item(Key={"id": "doc-1"}, ConsistentRead=True)["Item"]
check("boto3 put/get round trip", got["price"] == Decimal("19.99") and got["huge"] == Decimal("1E+37")
      and got["tiny"] == Decimal("-1E-130") and got["payload"].value == b"\x00\x01\xff"
      and got["flags"] == {"on": True, "off": False, "nothing": None}
      and got["list"] == [1, "two", [3]] and got["strings"] == {"x", "y"}
      and got["numbers"] == {Decimal(1), Decimal("2.5")})

# The extremes of the number range: the resource layer decodes numbers in a 38-digit decimal
# context, so integers beyond 38 digits must come back in exponent form ("1E+125") to be readable.
table.put_item(Item={"id": "extremes-resource", "hi": Decimal("1E+125"), "lo": Decimal("-1E-130")})
res = table.get_item(Key={"id": "extremes-resource"}, ConsistentRead=True)["Item"]
check("boto3 resource API reads the number range extremes",
      res["hi"] == Decimal("1E+125") and res["lo"] == Decimal("-1E-130"))
import decimal
wide = decimal.Context(prec=200)
ddb.put_item(TableName="smoke_boto", Item={"id": {"S": "extremes"}, "hi": {"N": "1E+125"},
                                           "lo": {"N": "-1E-130"}})
ext = ddb.get_item(TableName="smoke_boto", Key={"id": {"S": "extremes"}}, ConsistentRead=True)["Item"]
check("boto3 number range extremes",
      wide.create_decimal(ext["hi"]["N"]) == Decimal("1E+125")
      and wide.create_decimal(ext["lo"]["N"]) == Decimal("-1E-130"))

upd = table.update_item(
    Key={"id": "doc-1"},
    UpdateExpression="SET price = :p REMOVE payload",
    ConditionExpression="price < :limit",
    ExpressionAttributeValues={":p": Decimal("9.5"), ":limit": Decimal("100")},
    ReturnValues="UPDATED_NEW",
)
check("boto3 update-item UPDATED_NEW", upd["Attributes"] == {"price": Decimal("9.5")})
check("boto3 condition failure",
      error_code(lambda: table.update_item(
          Key={"id": "doc-1"}, UpdateExpression="SET price = :p",
          ConditionExpression="price > :p", ExpressionAttributeValues={":p": Decimal("1000")},
      )) == "ConditionalCheckFailedException")
proj = table.get_item(Key={"id": "doc-1"}, ProjectionExpression="price, flags.#on",
                      ExpressionAttributeNames={"#on": "on"})["Item"]
check("boto3 projection", proj == {"price": Decimal("9.5"), "flags": {"on": True}})

desc = ddb.describe_table(TableName="smoke_boto")["Table"]
check("boto3 describe-table", desc["TableName"] == "smoke_boto" and desc["TableStatus"] == "ACTIVE"
      and "TableId" in desc and "CreationDateTime" in desc and "ItemCount" in desc)
tags = ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"]
check("boto3 tags", tags == [{"Key": "env", "Value": "smoke"}])
check("boto3 list-tables", "smoke_boto" in ddb.list_tables()["TableNames"])

old = table.delete_item(Key={"id": "doc-1"}, ReturnValues="ALL_OLD")["Attributes"]
check("boto3 delete-item ALL_OLD", old["id"] == "doc-1")
check("boto3 get after delete", "Item" not in table.get_item(Key={"id": "doc-1"}, ConsistentRead=True))
check("boto3 validation error", error_code(lambda: table.put_item(Item={"id": ""})) == "ValidationException")

bad = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg,
                   aws_access_key_id="AKIDSMOKETEST0000001", aws_secret_access_key="wrong")
check("boto3 wrong signature refused", error_code(lambda: bad.list_tables()) == "InvalidSignatureException")
unknown = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg,
                       aws_access_key_id="AKIDNOBODY0000000000", aws_secret_access_key="x")
check("boto3 unknown key refused", error_code(lambda: unknown.list_tables()) == "UnrecognizedClientException")

# PartiQL transactions: writes commit together, a failed EXISTS cancels all, reads answer in order.
ddb.execute_transaction(TransactStatements=[
    {"Statement": "INSERT INTO smoke_boto VALUE {'id': ?, 'n': ?}", "Parameters": [{"S": "tx-1"}, {"N": "1"}]},
    {"Statement": "INSERT INTO smoke_boto VALUE {'id': ?, 'n': ?}", "Parameters": [{"S": "tx-2"}, {"N": "2"}]},
    {"Statement": "NOT EXISTS(SELECT * FROM smoke_boto WHERE id = 'tx-3')"},
])
reads = ddb.execute_transaction(TransactStatements=[
    {"Statement": "SELECT * FROM smoke_boto WHERE id = 'tx-2'"},
    {"Statement": "SELECT n FROM smoke_boto WHERE id = ?", "Parameters": [{"S": "tx-1"}]},
    {"Statement": "SELECT * FROM smoke_boto WHERE id = 'tx-3'"},
])["Responses"]
check("boto3 execute_transaction writes then reads in order",
      reads == [{"Item": {"id": {"S": "tx-2"}, "n": {"N": "2"}}}, {"Item": {"n": {"N": "1"}}}, {}])
try:
    ddb.execute_transaction(TransactStatements=[
        {"Statement": "UPDATE smoke_boto SET n = n + 1 WHERE id = 'tx-1'"},
        {"Statement": "EXISTS(SELECT * FROM smoke_boto WHERE id = 'tx-2' AND n = 5)",
         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
    ])
    canceled = None
except ClientError as e:
    canceled = e.response
check("boto3 execute_transaction canceled by EXISTS with reasons in order",
      canceled is not None and canceled["Error"]["Code"] == "TransactionCanceledException"
      and [r["Code"] for r in canceled["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
      and canceled["CancellationReasons"][1]["Item"] == {"id": {"S": "tx-2"}, "n": {"N": "2"}})
bump = [{"Statement": "UPDATE smoke_boto SET n = n + 10 WHERE id = 'tx-1'"}]
ddb.execute_transaction(TransactStatements=bump, ClientRequestToken="smoke-token-1")
ddb.execute_transaction(TransactStatements=bump, ClientRequestToken="smoke-token-1")
n = ddb.get_item(TableName="smoke_boto", Key={"id": {"S": "tx-1"}}, ConsistentRead=True)["Item"]["n"]
check("boto3 execute_transaction token retry writes once", n == {"N": "11"})
check("boto3 execute_transaction mixing reads and writes refused",
      error_code(lambda: ddb.execute_transaction(TransactStatements=[
          {"Statement": "SELECT * FROM smoke_boto WHERE id = 'tx-1'"},
          {"Statement": "DELETE FROM smoke_boto WHERE id = 'tx-2'"},
      ])) == "ValidationException")

ddb.delete_table(TableName="smoke_boto")
check("boto3 delete-table", True)

failed = [n for n, ok in results if not ok]
print(f"BOTO3 {len(results) - len(failed)} {len(failed)}")
sys.exit(1 if failed else 0)
EOF
); then BOTO_STATUS=0; else BOTO_STATUS=$?; fi
echo "$BOTO_OUT" | grep -v '^BOTO3 '
if COUNTS=$(echo "$BOTO_OUT" | grep '^BOTO3 '); then
    read -r _ ok bad <<<"$COUNTS"
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + bad))
fi
if [ "$BOTO_STATUS" -ne 0 ] && [ -z "${COUNTS:-}" ]; then
    fail "boto3 script" "exited with $BOTO_STATUS"
fi

# --- DynamoDB Streams ---------------------------------------------------------------------
# A table with a stream, written with the AWS CLI, then read with `aws dynamodbstreams` and
# boto3's "dynamodbstreams" client on the same endpoint.
echo "smoke: streams"
DDBS=("$AWS" dynamodbstreams --endpoint-url "$ENDPOINT" --output json)
check "cli create-table with a stream" 'out["TableDescription"]["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"} and out["TableDescription"]["LatestStreamArn"].endswith("/stream/" + out["TableDescription"]["LatestStreamLabel"])' -- \
    "${DDB[@]}" create-table --table-name smoke_stream \
    --attribute-definitions AttributeName=pk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH --billing-mode PAY_PER_REQUEST \
    --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES
check "cli wait table-exists (stream)" 'True' -- \
    "${DDB[@]}" wait table-exists --table-name smoke_stream
check "cli put-item (stream)" 'True' -- \
    "${DDB[@]}" put-item --table-name smoke_stream --item '{"pk":{"S":"s1"},"v":{"N":"1"}}'
check "cli update-item (stream)" 'True' -- \
    "${DDB[@]}" update-item --table-name smoke_stream --key '{"pk":{"S":"s1"}}' \
    --update-expression 'SET v = :two' --expression-attribute-values '{":two":{"N":"2"}}'
check "cli delete-item (stream)" 'True' -- \
    "${DDB[@]}" delete-item --table-name smoke_stream --key '{"pk":{"S":"s1"}}'
STREAM_ARN=$("${DDB[@]}" describe-table --table-name smoke_stream \
    --query Table.LatestStreamArn --output text)
check "cli list-streams" 'len(out["Streams"]) == 1 and out["Streams"][0]["TableName"] == "smoke_stream" and out["Streams"][0]["StreamArn"].endswith("/stream/" + out["Streams"][0]["StreamLabel"])' -- \
    "${DDBS[@]}" list-streams --table-name smoke_stream
check "cli describe-stream" 'out["StreamDescription"]["StreamStatus"] == "ENABLED" and out["StreamDescription"]["StreamViewType"] == "NEW_AND_OLD_IMAGES" and out["StreamDescription"]["TableName"] == "smoke_stream" and len(out["StreamDescription"]["Shards"]) >= 1' -- \
    "${DDBS[@]}" describe-stream --stream-arn "$STREAM_ARN"
EVENTS=""
for SHARD in $("${DDBS[@]}" describe-stream --stream-arn "$STREAM_ARN" \
    --query 'StreamDescription.Shards[].ShardId' --output text); do
    IT=$("${DDBS[@]}" get-shard-iterator --stream-arn "$STREAM_ARN" --shard-id "$SHARD" \
        --shard-iterator-type TRIM_HORIZON --query ShardIterator --output text)
    EVENTS+=" $("${DDBS[@]}" get-records --shard-iterator "$IT" \
        --query 'Records[].eventName' --output text)"
done
check "cli get-records INSERT, MODIFY, REMOVE" 'out == ["INSERT", "MODIFY", "REMOVE"]' -- \
    "$PY" -c 'import json, sys; print(json.dumps([w for w in sys.argv[1].split() if w != "None"]))' "$EVENTS"
check_fails "cli get-records of a garbage iterator" "ValidationException" -- \
    "${DDBS[@]}" get-records --shard-iterator garbage

if STREAM_OUT=$("$PY" - "$ENDPOINT" <<'EOF' 2>&1
import sys
import time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
results = []

def check(name, cond):
    results.append((name, bool(cond)))
    print(("  ok   " if cond else "  FAIL ") + name)

def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None

arn = ddb.describe_table(TableName="smoke_stream")["Table"]["LatestStreamArn"]
listed = streams.list_streams(TableName="smoke_stream")["Streams"]
check("boto3 list_streams", [s["StreamArn"] for s in listed] == [arn])
desc = streams.describe_stream(StreamArn=arn)["StreamDescription"]
check("boto3 describe_stream", desc["StreamStatus"] == "ENABLED"
      and desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}])
records = []
for shard in desc["Shards"]:
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    while it:
        page = streams.get_records(ShardIterator=it, Limit=1)
        records += page["Records"]
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
check("boto3 get_records events", [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"])
if len(records) == 3:
    ins, mod, rem = (r["dynamodb"] for r in records)
    check("boto3 get_records images",
          "OldImage" not in ins and ins["NewImage"] == {"pk": {"S": "s1"}, "v": {"N": "1"}}
          and mod["OldImage"]["v"] == {"N": "1"} and mod["NewImage"]["v"] == {"N": "2"}
          and rem["OldImage"]["v"] == {"N": "2"} and "NewImage" not in rem
          and all(r["Keys"] == {"pk": {"S": "s1"}} for r in (ins, mod, rem)))
    check("boto3 get_records metadata",
          all(r["eventSource"] == "aws:dynamodb" and r["eventVersion"] == "1.1"
              and r["awsRegion"] == "us-east-1"
              and r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
              and r["dynamodb"]["SizeBytes"] > 0
              and r["dynamodb"]["ApproximateCreationDateTime"].year >= 2024
              for r in records)
          and ins["SequenceNumber"] < mod["SequenceNumber"] < rem["SequenceNumber"])
check("boto3 unknown stream",
      error_code(lambda: streams.describe_stream(StreamArn=arn + "0")) == "ResourceNotFoundException")
check("boto3 garbage iterator",
      error_code(lambda: streams.get_records(ShardIterator="garbage")) == "ValidationException")

ddb.update_table(TableName="smoke_stream", StreamSpecification={"StreamEnabled": False})
ddb.get_waiter("table_exists").wait(TableName="smoke_stream", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
table = ddb.describe_table(TableName="smoke_stream")["Table"]
# DISABLING until every partition applied the change in its log, then DISABLED.
status = None
for _ in range(100):
    status = streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"]
    if status == "DISABLED":
        break
    time.sleep(0.1)
check("boto3 stream disabled", table["StreamSpecification"] == {"StreamEnabled": False}
      and table["LatestStreamArn"] == arn
      and status == "DISABLED")
ddb.delete_table(TableName="smoke_stream")

failed = [n for n, ok in results if not ok]
print(f"STREAMS {len(results) - len(failed)} {len(failed)}")
sys.exit(1 if failed else 0)
EOF
); then STREAM_STATUS=0; else STREAM_STATUS=$?; fi
echo "$STREAM_OUT" | grep -v '^STREAMS '
if COUNTS=$(echo "$STREAM_OUT" | grep '^STREAMS '); then
    read -r _ ok bad <<<"$COUNTS"
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + bad))
fi
if [ "$STREAM_STATUS" -ne 0 ] && [ -z "${COUNTS:-}" ]; then
    fail "boto3 streams script" "exited with $STREAM_STATUS"
fi

# --- HTTPS (--tls self-signed) ------------------------------------------------------------
echo "smoke: https"
TLS_ENDPOINT="https://localhost:$TLS_PORT"
PEM=$(sed -n 's/^ *TLS certificate (PEM; clients may use it as their CA bundle): //p' "$WORK/stdout.log")
PRINTED_FP=$(sed -n 's/^ *TLS certificate SHA-256 fingerprint: //p' "$WORK/stdout.log")
# SHA-256 of the certificate's DER, in openssl's `x509 -fingerprint -sha256` form (computed with
# Python's ssl module: a fresh machine may have no openssl binary).
OPENSSL_FP=$(python3 -c 'import hashlib, ssl, sys
der = ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())
print(":".join("%02X" % b for b in hashlib.sha256(der).digest()))' "$PEM" 2>&1)
if [ -n "$PRINTED_FP" ] && [ "$PRINTED_FP" = "$OPENSSL_FP" ]; then
    pass "printed fingerprint matches the certificate's SHA-256"
else
    fail "printed fingerprint matches the certificate's SHA-256" "printed '$PRINTED_FP', computed '$OPENSSL_FP', stdout: $(cat "$WORK/stdout.log")"
fi
TDDB=("$AWS" dynamodb --endpoint-url "$TLS_ENDPOINT" --ca-bundle "$PEM" --output json)
check "https cli create-table" 'out["TableDescription"]["TableName"] == "smoke_tls"' -- \
    "${TDDB[@]}" create-table --table-name smoke_tls \
    --attribute-definitions AttributeName=pk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH --billing-mode PAY_PER_REQUEST
check "https cli put-item" 'True' -- \
    "${TDDB[@]}" put-item --table-name smoke_tls --item '{"pk":{"S":"tls"},"v":{"N":"7"}}'
check "https cli get-item" 'out["Item"]["v"] == {"N": "7"}' -- \
    "${TDDB[@]}" get-item --table-name smoke_tls --consistent-read --key '{"pk":{"S":"tls"}}'
check "http sees the https write" 'out["Item"]["v"] == {"N": "7"}' -- \
    "${DDB[@]}" get-item --table-name smoke_tls --consistent-read --key '{"pk":{"S":"tls"}}'
check_fails "https cli without the CA bundle refused" "SSL" -- \
    "$AWS" dynamodb --endpoint-url "$TLS_ENDPOINT" --output json list-tables
check "https shoal status --ca-bundle (signed)" 'out["health"] == "ok"' -- \
    "$BIN" status --json --endpoint "$TLS_ENDPOINT" --ca-bundle "$PEM"
check_fails "https shoal status without the CA bundle refused" "certificate" -- \
    env -u AWS_CA_BUNDLE "$BIN" status --json --endpoint "$TLS_ENDPOINT"
if TLS_OUT=$("$PY" - "https://127.0.0.1:$TLS_PORT" "$PEM" <<'EOF' 2>&1
import sys
import boto3
from botocore.config import Config
from botocore.exceptions import SSLError

endpoint, pem = sys.argv[1], sys.argv[2]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg, verify=pem)
ddb.put_item(TableName="smoke_tls", Item={"pk": {"S": "boto"}, "v": {"N": "8"}})
got = ddb.get_item(TableName="smoke_tls", Key={"pk": {"S": "boto"}}, ConsistentRead=True)["Item"]
assert got["v"] == {"N": "8"}, got
assert "smoke_tls" in ddb.list_tables()["TableNames"]
untrusting = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
try:
    untrusting.list_tables()
    raise SystemExit("a client without the CA bundle was not refused")
except SSLError:
    pass
ddb.delete_table(TableName="smoke_tls")
print("ok")
EOF
); then
    pass "https boto3 verify=<pem> round trip"
else
    fail "https boto3 verify=<pem> round trip" "$TLS_OUT"
fi

# --- Shutdown -----------------------------------------------------------------------------
kill -TERM "$SERVER_PID"
if wait "$SERVER_PID"; then
    pass "server exits 0 on SIGTERM"
else
    fail "server exits 0 on SIGTERM" "$(tail -20 "$WORK/stderr.log")"
fi
SERVER_PID=

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

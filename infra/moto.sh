#!/usr/bin/env bash
# Starts moto server (the AWS emulator the AWS tests use: DynamoDB, SQS, Secrets Manager) on
# 127.0.0.1:${MOTO_PORT:-5599} unless one already answers there, and waits until it is ready.
# Installs `moto[server]` with pip first when python3 cannot import it.
#
#   infra/moto.sh                 # then: export MAESTRO_TEST_AWS_ENDPOINT=http://127.0.0.1:5599
#
# The server keeps running in the background (its pid in ${MOTO_DIR}/moto.pid, its output in
# ${MOTO_DIR}/moto.log); stop it with `kill "$(cat "${MOTO_DIR}/moto.pid")"`.
set -euo pipefail

host=127.0.0.1
port="${MOTO_PORT:-5599}"
url="http://${host}:${port}"
dir="${MOTO_DIR:-${TMPDIR:-/tmp}/maestro-moto}"

ready() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "${url}/moto-api/" \
        >/dev/null 2>&1
}

if ready; then
    echo "moto: already running at ${url}"
    exit 0
fi

if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
    echo "moto: installing moto[server] with pip"
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
fi

# moto_server, with two fixes to DynamoDB's TransactWriteItems, which deep-copies every table it
# touches as its rollback copy: (1) moto 5.x tracks every model instance it creates for its reset,
# so each transaction leaked whole table copies (8 GB after the conformance suite): they are
# dropped from the tracking lists after each transaction; (2) the copy was made once per item of
# the transaction instead of once per table: it is made once; (3) it rolls a cancelled transaction
# back by restoring that whole-table copy, which under concurrency undoes writes other requests
# committed meanwhile (lost counter updates: a window passing one request more than its limit):
# DynamoDB's writes and GetItem are serialized under one lock, as DynamoDB isolates them. If
# moto's internals ever change, the server starts unpatched and says so in its log.
launcher='
import copy
import sys
import threading

try:
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    inside = threading.local()

    class CopyOncePerTransaction:
        """The `copy` module as moto.dynamodb.models sees it."""

        def __getattr__(self, name):
            return getattr(copy, name)

        def deepcopy(self, value, memo=None):
            cache = getattr(inside, "copies", None)
            if cache is None or memo is not None:
                return copy.deepcopy(value, memo)
            if id(value) not in cache:
                cache[id(value)] = (value, copy.deepcopy(value))
            return cache[id(value)][1]

    transact = DynamoDBBackend.transact_write_items

    def transact_once_without_leak(self, transact_items):
        marks = [(cls, len(getattr(cls, "instances_tracked", []))) for cls in (Table, Item)]
        inside.copies = {}
        try:
            return transact(self, transact_items)
        finally:
            inside.copies = None
            for cls, mark in marks:
                tracked = getattr(cls, "instances_tracked", None)
                if isinstance(tracked, list):
                    del tracked[mark:]

    if getattr(models, "copy", None) is copy:
        models.copy = CopyOncePerTransaction()
    DynamoDBBackend.transact_write_items = transact_once_without_leak

    one_at_a_time = threading.RLock()  # re-entrant: a transaction calls update_item & co.

    def serialized(operation):
        def run(self, *args, **kwargs):
            with one_at_a_time:
                return operation(self, *args, **kwargs)
        return run

    for name in ("transact_write_items", "update_item", "put_item", "delete_item", "get_item"):
        setattr(DynamoDBBackend, name, serialized(getattr(DynamoDBBackend, name)))
except Exception as e:
    print("moto.sh: moto left unpatched:", repr(e), file=sys.stderr)

from moto.server import main

sys.exit(main(sys.argv[1:]))
'

mkdir -p "$dir"
nohup python3 -c "$launcher" -H "$host" -p "$port" >"${dir}/moto.log" 2>&1 &
echo $! >"${dir}/moto.pid"

for _ in $(seq 1 100); do
    if ready; then
        echo "moto: ready at ${url} (pid $(cat "${dir}/moto.pid"), log ${dir}/moto.log)"
        exit 0
    fi
    if ! kill -0 "$(cat "${dir}/moto.pid")" 2>/dev/null; then
        echo "moto: the server exited; its log:" >&2
        cat "${dir}/moto.log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "moto: not ready after 20 s; its log:" >&2
cat "${dir}/moto.log" >&2
exit 1

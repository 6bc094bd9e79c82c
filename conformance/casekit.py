"""The scoreboard side of the Python conformance clients: `@case` registers a case,
`run()` runs them in order and records `client / case / PASS|FAIL` lines in CV_RESULTS
(a failing case shows the last lines of its traceback), `expect` and `expect_refused`
state what a case wants. A case that raises fails; nothing is ever skipped.
"""

import os
import traceback

RESULTS = os.environ["CV_RESULTS"]
CASES = []
NOTES = []  # what a case observed, shown under its result line


def record(client, case, ok, detail=""):
    line = f"{client} / {case} / {'PASS' if ok else 'FAIL'}"
    print(line, flush=True)
    with open(RESULTS, "a") as f:
        f.write(line + "\n")
    if not ok and detail:
        for text in detail.rstrip().splitlines()[-20:]:
            print(f"    | {text}", flush=True)


def case(fn):
    CASES.append(fn)
    return fn


def run(client):
    ctx = {}
    for fn in CASES:
        name = fn.__name__.replace("_", "-")
        try:
            fn(ctx)
        except Exception:
            record(client, name, False, traceback.format_exc())
        else:
            record(client, name, True)
        for note in NOTES:
            print(f"    ({note})", flush=True)
        NOTES.clear()


def user_session():
    """A read-write session on the token CV_TOKEN_LABEL of MODULE, logged in with
    USER_PIN, through python-pkcs11."""
    import pkcs11

    lib = pkcs11.lib(os.environ["MODULE"])
    token = lib.get_token(token_label=os.environ["CV_TOKEN_LABEL"])
    return token.open(user_pin=os.environ["USER_PIN"], rw=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def expect_refused(what, fn, error_base):
    """fn must fail with an error of class error_base (the binding's PKCS#11 error);
    returns that error's class name."""
    try:
        fn()
    except error_base as e:
        NOTES.append(f"{what}: {type(e).__name__}")
        return type(e).__name__
    raise AssertionError(f"{what}: the token accepted it")

"""Schemathesis hooks for aloft's API fuzz test (tests/api_fuzz.rs).

The server's bearer token is read from its token file, named by ALOFT_FUZZ_TOKEN_FILE, so it
never appears on a command line.
"""

import os

import schemathesis


@schemathesis.auth()
class ServerToken:
    def get(self, case, context):
        with open(os.environ["ALOFT_FUZZ_TOKEN_FILE"], encoding="utf-8") as token:
            return token.read().strip()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"

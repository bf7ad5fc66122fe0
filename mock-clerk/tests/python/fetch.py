"""Fetch URLs the way an unmodified backend does: nothing about proxies or CAs in code.

Whatever routes these requests to the mock must come from the environment the test sets
(HTTPS_PROXY, SSL_CERT_FILE, ...). Used by mock-clerk/tests/intercept.rs.

    python fetch.py {urllib|urllib-strict|httpx} [--bearer KEY] URL...

urllib-strict verifies like Python >= 3.13's default context (VERIFY_X509_STRICT), which
rejects certificates that older Pythons accept, e.g. without an authority key identifier.

Prints one JSON object per URL on stdout: {"url", "status", "body"} or {"url", "error"}.
Diagnostics (versions, CA paths, tracebacks) go to stderr, which the test shows on failure.
"""

import json
import ssl
import sys
import traceback
import urllib.parse


def fetch_urllib(url, headers, context=None):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def fetch_urllib_strict(url, headers):
    context = ssl.create_default_context()
    context.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    return fetch_urllib(url, headers, context)


def fetch_httpx(url, headers):
    import httpx

    response = httpx.get(url, headers=headers, timeout=10)
    return response.status_code, response.text


def main(argv):
    client, rest = argv[0], argv[1:]
    bearer = None
    if rest[:1] == ["--bearer"]:
        bearer, rest = rest[1], rest[2:]
    fetch = {
        "urllib": fetch_urllib,
        "urllib-strict": fetch_urllib_strict,
        "httpx": fetch_httpx,
    }[client]

    if client == "httpx":
        import httpx

        print(f"httpx {httpx.__version__}", file=sys.stderr)
    print(f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}", file=sys.stderr)
    print(f"default verify paths: {ssl.get_default_verify_paths()}", file=sys.stderr)

    for url in rest:
        headers = {}
        # Like the backend: only the Backend API gets the secret key.
        if bearer and urllib.parse.urlsplit(url).hostname == "api.clerk.com":
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            status, body = fetch(url, headers)
            result = {"url": url, "status": status, "body": body}
        except Exception as error:  # noqa: BLE001 - every failure is a result to report
            traceback.print_exc()
            result = {"url": url, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Shared helpers for the benchmark scripts: run a command, measure wall time and peak RSS, and
count the HTTP requests a registry logged for one command. `python3 scripts/benchlib.py` runs the
examples below (scripts/test.sh does)."""
import os, re, statistics, subprocess, sys, time


def run(cmd, env, ok_codes=(0,)):
    """Wall seconds and peak RSS (KiB) of one command; exits loudly on an unexpected code."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode not in ok_codes:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd[:4])}…\n{p.stderr[-2000:]}")
    return wall, int(p.stderr.strip().splitlines()[-1])


def run_wall(cmd, env, ok_codes=(0,)):
    """Wall seconds of one command run directly (no /usr/bin/time around it, whose own start
    would be timed too: about a millisecond, which matters for commands that take ten). It
    starts after a 100 ms pause, so that the registry has finished with the command before
    (the other tool's, in alternating rounds) and each tool meets an idle registry."""
    time.sleep(0.1)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    if p.returncode not in ok_codes:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd[:4])}…\n{p.stderr[-2000:].decode(errors='replace')}")
    return wall


def median(samples, i):
    return statistics.median(s[i] for s in samples)


# One request in a registry log: docker-registry's access log writes
#   127.0.0.1 - - [28/Nov/2026:10:47:44 +0000] "GET /v2/a/manifests/v1 HTTP/1.1" 200 2 "" "curl/7.88.1"
# and refreg (go-containerregistry's registry) writes
#   2026/11/28 10:50:10 HEAD /v2/a/manifests/x 404 NAME_UNKNOWN Unknown name
_REQUEST = re.compile(r'(?:^|[\s"])(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2[^\s?"]*)')


def request_lines(text):
    """The requests in registry log text, as "METHOD /path" (query left out), in order.

    >>> request_lines('127.0.0.1 - - [28/Nov/2026:10:47:44 +0000] "GET /v2/a/manifests/v1 HTTP/1.1" 200 2\\n'
    ...               '2026/11/28 10:50:10 PUT /v2/a/blobs/uploads/u?digest=sha256:00 201\\n'
    ...               '2026/11/28 10:50:10 listening on 127.0.0.1:5000\\n')
    ['GET /v2/a/manifests/v1', 'PUT /v2/a/blobs/uploads/u']
    """
    return [f"{m.group(1)} {m.group(2)}" for m in map(_REQUEST.search, text.splitlines()) if m]


class RequestLog:
    """A registry's log file, read between two marks: the requests of one command.

    >>> import tempfile
    >>> path = tempfile.mkstemp()[1]
    >>> log = RequestLog(path)
    >>> _ = open(path, "a").write('"GET /v2/ HTTP/1.1" 200\\n')          # before the mark: not counted
    >>> mark = log.mark()
    >>> _ = open(path, "a").write('"HEAD /v2/a/manifests/v1 HTTP/1.1" 200\\n"GET /v2/a/blobs/sha256:00 HTTP/1.1" 200\\n')
    >>> log.count_since(mark), log.since(mark)
    (2, ['HEAD /v2/a/manifests/v1', 'GET /v2/a/blobs/sha256:00'])
    >>> os.remove(path)
    """

    def __init__(self, path):
        self.path = path

    def _size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def mark(self, settle=0.1, limit=3.0):
        """The log's end once the registry stopped writing (a request's line may land just after
        its response reached the client): unchanged for `settle` seconds, or `limit` passed."""
        last, start = self._size(), time.monotonic()
        while True:
            time.sleep(settle)
            now = self._size()
            if now == last or time.monotonic() - start > limit:
                return now
            last = now

    def since(self, mark, end=None):
        """The requests logged between `mark` and `end` (default: a fresh mark)."""
        end = self.mark() if end is None else end
        with open(self.path, "rb") as f:
            f.seek(mark)
            return request_lines(f.read(max(0, end - mark)).decode("utf-8", "replace"))

    def count_since(self, mark, end=None):
        return len(self.since(mark, end))


if __name__ == "__main__":
    import doctest
    sys.exit(doctest.testmod().failed)

"""Downloads a Debian source package (for the test suites it ships) without touching the
machine's apt configuration: the deb-src twins of the machine's own apt sources go into a
private apt state directory, `apt-get source --download-only` fetches the package there,
and its upstream tarball is unpacked into a cache directory that later runs reuse.

When it cannot be done (no apt-get, no network) the caller's test is skipped: exit 77,
which ctest reports as skipped, after saying why.

Also shared by the suite runners: read_expected(), their lists of expected failures.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def skip(what, why):
    print(f"{what}: skipped: {why}")
    sys.exit(SKIP)


def apt_source_lines():
    """The machine's apt sources turned into deb-src entries (one-line format)."""
    lines = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("deb "):
                        lines.append("deb-src " + line[4:])
        except OSError:
            pass
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            opts = f"[signed-by={fields['signed-by']}] " if fields.get("signed-by", "").startswith("/") else ""
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    lines.append(f"deb-src {opts}{uri} {suite} {fields.get('components', '')}".strip())
    return lines


def fetch(what, package, cache, tree_glob, marker):
    """Returns the unpacked tree matching `tree_glob` (in `cache`) that contains `marker`,
    downloading and unpacking the source package `package` first if there is none."""
    def find():
        for tree in sorted(glob.glob(os.path.join(cache, tree_glob))):
            if os.path.exists(os.path.join(tree, marker)):
                return tree
        return None

    os.makedirs(cache, exist_ok=True)
    tree = find()
    if tree:
        return tree
    if not shutil.which("apt-get"):
        skip(what, f"no apt-get to download the {package} source package with")
    sources = apt_source_lines()
    if not sources:
        skip(what, "no apt sources to derive deb-src entries from")
    work = tempfile.mkdtemp(prefix="apt-", dir=cache)
    try:
        for d in ("lists/partial", "cache/archives/partial", "parts"):
            os.makedirs(os.path.join(work, d))
        with open(os.path.join(work, "sources.list"), "w") as f:
            f.write("\n".join(sources) + "\n")
        opts = []
        for o in (f"Dir::Etc::sourcelist={work}/sources.list", f"Dir::Etc::sourceparts={work}/parts",
                  f"Dir::State::Lists={work}/lists", f"Dir::Cache={work}/cache", "Debug::NoLocking=1"):
            opts += ["-o", o]
        print(f"{what}: downloading the {package} source package (apt-get source --download-only)")
        for args in (["update"], ["source", "--download-only", package]):
            p = subprocess.run(["apt-get", "-qq"] + opts + args, cwd=work, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                skip(what, f"apt-get {args[0]} failed: {(p.stderr or p.stdout).strip()[-500:]}")
        tarballs = glob.glob(os.path.join(work, "*.orig.tar.*"))
        if not tarballs:
            skip(what, f"apt-get source left no {package} *.orig.tar.* behind")
        subprocess.run(["tar", "-xf", tarballs[0], "-C", cache], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tree = find()
    if not tree:
        skip(what, f"the {package} source package has no {marker}")
    return tree


def read_expected(path, key_fields):
    """{key: reason} from a list of expected failures: one per line, `key | reason`, where
    the key is `key_fields` fields separated by " | " (the last of them may contain " | "
    itself); blank lines and # comments are skipped. A key of one field is a string,
    of more a tuple."""
    expected = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split(" | ")]
            if len(parts) < key_fields + 1:
                raise SystemExit(f"{path}:{n}: expected {key_fields} field(s) and a reason, separated by ' | '")
            key = parts[:key_fields - 1] + [" | ".join(parts[key_fields - 1:-1])]
            expected[tuple(key) if key_fields > 1 else key[0]] = parts[-1]
    return expected

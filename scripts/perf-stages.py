#!/usr/bin/env python3
"""Where a request's CPU goes, by stage, from a `perf record --call-graph dwarf` of s3warden.

    perf record -F 999 --call-graph dwarf,16384 -p "$(pgrep -f 'release/s3warden')" -o s3w.data -- sleep 10
    perf script -i s3w.data -F comm,ip,sym > s3w.script
    scripts/perf-stages.py s3w.script 62.5     # 62.5: the load's CPU µs per request

Each sample goes to one stage: kernel when the sample is in a syscall or an
interrupt (whichever code made it), otherwise the innermost frame of its call
chain that names a stage below (so SHA-256 inside the verifier counts as
authentication, inside the audit writer as audit). Samples whose chain names
none of them (tokio's scheduler, the allocator, libc, chains perf could not
unwind) are reported together. Figures are shares of the samples, and µs per
request when the load's CPU per request is given (benches/nginx_compare.rs
prints it).
"""

import collections
import re
import sys

# Checked in this order at each frame, innermost frame first.
STAGES = [
    ("audit record and log",
     r"audit::writer::run|audit::record|AuditRecord|audit::chain|audit::params|SharedGuard|audit::AuditLog"),
    ("re-sign (upstream SigV4)", r"upstream::signer"),
    ("authenticate (signature, key lookup)",
     r"server::authenticate::authenticate|auth::presign|auth::sigv4|auth::sigv2|auth::signing|resolve_key"),
    ("authorize (condition context, policy)",
     r"common_context|authorize_recorded|policy::|Directory>::authorize|identity::"),
    ("parse and classify (query, bucket and key, operation)",
     r"canonical::parse_query|s3::classify|s3::address|canonical::query_decode|s3::headers"),
    ("metrics", r"prometheus|metrics::"),
    ("pipeline (headers in and out, relay)",
     r"server::pipeline|server::response|server::body|forward_headers|strip_upstream"),
    ("upstream connection (request, pool, hyper client)",
     r"role::Client|hyper::client|upstream::pool|Upstream::send|upstream::progress"),
    ("client connection (HTTP/1 parse and write; hyper's server for HTTP/2)",
     r"server::http1::|s3warden::http1::|server::conn::|server::Protocols|role::Server|dispatch::|poll_read_head|h1::conn|h1::io|h1::role"),
    ("audit log compression (rotated files)", r"audit::writer::compress|zlib_rs::"),
]
KERNEL_ENTRY = re.compile(r"entry_SYSCALL_64|^asm_|irqentry")
OTHER = "runtime and other (tokio, allocator, libc, not unwound)"


def samples(path):
    """Yields (thread name, [frame symbols, innermost first]) per sample."""
    comm, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, frames
                comm, frames = None, []
            elif not line[0].isspace():
                comm, frames = line.split()[0], []
            else:
                parts = line.strip().split(None, 1)
                frames.append(parts[1] if len(parts) > 1 else "")
    if comm is not None:
        yield comm, frames


def stage_of(frames):
    if any(KERNEL_ENTRY.search(f) for f in frames):
        return "kernel (syscalls, TCP, wake-ups, page cache)"
    for frame in frames:
        for name, pattern in STAGES:
            if re.search(pattern, frame):
                return name
    return OTHER


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    per_request = float(sys.argv[2]) if len(sys.argv) == 3 else None
    counts = collections.Counter()
    sha = collections.Counter()
    for comm, frames in samples(sys.argv[1]):
        if not frames:
            continue
        thread = "audit thread" if "audit" in comm or "gzip" in comm else "workers"
        stage = stage_of(frames)
        counts[(stage, thread)] += 1
        if "sha2::" in frames[0]:
            sha[(stage, thread)] += 1
    total = sum(counts.values())
    if total == 0:
        sys.exit("no samples with call chains in " + sys.argv[1])
    print(f"{total} samples")
    for (stage, thread), n in counts.most_common():
        us = f"{per_request * n / total:6.1f} µs" if per_request else ""
        hashed = f" (SHA-256 {100 * sha[(stage, thread)] / n:.0f} %)" if sha[(stage, thread)] else ""
        print(f"{100 * n / total:5.1f} % {us}  {thread:12}  {stage}{hashed}")


if __name__ == "__main__":
    main()

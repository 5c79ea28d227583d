"""W2 image (docs/benchmarks.md): an RGBA image with width/height/format from one
process to another, as JSON with base64 over a pipe (the way such pipelines are often built today) vs a Quiver image
frame copied in (`quiver`) vs written in place in the loan (`quiver-loan`), with the memcpy
of the same bytes as the copy limit. The C++ peer (bench/w2_image_peer.cc) forks the consumer,
times every image and checks every pixel's checksum; this module runs it and reports.

CPU (bench/cpu_usage.py): ``cpu_s_per_gb`` is the user + system CPU of the producer and the
consumer process, summed over the timed images, per 1e9 pixel bytes (``bytes`` per image, the
same for every transport; JSON carries them as base64); ``cpu_s_per_gb_by_process`` gives each
process's share. The peer measures both as deltas of each process's CPU clock
(CLOCK_PROCESS_CPUTIME_ID) around each image (its header says where each span starts and ends);
starting the consumer and creating the channel are outside them."""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import cpu_usage  # noqa: E402

WORKLOAD = "w2_image"
TITLE = "W2 image: RGBA frames, JSON+base64 vs Quiver copy-in vs loan"

SIZES = ["640x480", "1920x1080", "3840x2160"]
TRANSPORTS = ["memcpy", "json-base64-stdio", "quiver", "quiver-loan"]
HEADLINE = (1920, 1080)


def run(ctx: common.Context) -> dict:
    reps = 2 if ctx.smoke else ctx.repetitions(full=60, quick=10)
    warmup = 0 if ctx.smoke else 3
    sizes = ["64x48", "320x240"] if ctx.smoke else SIZES
    results = []
    cases = [(s, t) for s in sizes for t in TRANSPORTS]
    for i, (size, transport) in enumerate(cases, 1):
        # json-base64 at 4K takes ~0.5 s an image: fewer of them.
        n = max(3, reps // 6) if transport == "json-base64-stdio" and size == SIZES[-1] else reps
        ctx.progress(f"[{i}/{len(cases)}] {transport} {size}: {n} images")
        proc = common.run_checked(
            [str(ctx.binary("w2_image_peer")), "--sizes", size, "--transports", transport,
             "--reps", str(n), "--warmup", str(warmup)],
            timeout=600, what=f"w2_image_peer {transport} {size}")
        for line in proc.stdout.splitlines():
            out = json.loads(line)
            entry = {"transport": out["transport"], "width": out["width"],
                     "height": out["height"], "bytes": out["bytes"],
                     **common.summarize_us(out["samples_us"]),
                     **cpu_usage.per_gb(out["bytes"] * len(out["samples_us"]),
                                        out["cpu_s"])}
            results.append(entry)
    params = {"sizes": sizes, "format": "rgba8", "images_per_case": reps,
              "warmup": warmup,
              "time": "pixels ready in the producer (its buffer, or the loan) until the "
                      "consumer holds a checked view; memcpy: one copy in one process",
              "consumer_receive": "blocking (futex), no spin",
              "cpu": {
                  "figure": "cpu_s_per_gb: user + system CPU seconds (deltas of "
                            "CLOCK_PROCESS_CPUTIME_ID, what getrusage RUSAGE_SELF sums, in ns) "
                            "of the producer and the consumer process, summed over the timed "
                            "images, per 1e9 bytes moved",
                  "bytes": "the image's pixels (width x height x 4), the same for every "
                           "transport (JSON carries them as base64)",
                  "producer": "from t0 until the consumer's reply is back, building and "
                              "freeing the JSON included; quiver-loan: and the loan, not "
                              "writing the pixels into it",
                  "consumer": "from waiting for the image until it holds the checked view, "
                              "then releasing it (freeing the pixels, returning the sample); "
                              "not the checksum",
                  "memcpy": "the copy alone, in the producer",
                  "outside": "starting the consumer process and creating the channel"}}
    result = common.result_file(WORKLOAD, params, results)
    return result


def _pixels(size: str) -> int:
    w, h = (int(x) for x in size.split("x"))
    return w * h


def _find(result: dict, transport: str, width: int, height: int):
    return common.entry(result["results"], transport=transport, width=width, height=height)


def summary(result: dict) -> str:
    sizes = result["params"]["sizes"]
    lines = [f"{'image':>10} {'bytes':>10} " + " ".join(f"{t:>18}" for t in TRANSPORTS)
             + "   quiver/memcpy  json/quiver-loan"]
    for size in sizes:
        w, h = (int(x) for x in size.split("x"))
        row = [_find(result, t, w, h) for t in TRANSPORTS]
        cells = " ".join(f"{r['median_us']:>15.1f} us" if r else f"{'n/a':>18}" for r in row)
        copy = common.ratio(row[2], row[0])
        legacy = common.ratio(row[1], row[3])
        lines.append(f"{size:>10} {w * h * 4:>10,} {cells}   {common.fmt_ratio(copy):>13}"
                     f"  {common.fmt_ratio(legacy):>16}")
    loans = [r["median_us"] for s in sizes
             if (r := _find(result, "quiver-loan", *(int(x) for x in s.split("x"))))]
    if loans:
        lines.append(f"quiver-loan p50 across sizes: {min(loans):.1f}..{max(loans):.1f} us "
                     f"(bytes grow {_pixels(sizes[-1]) / _pixels(sizes[0]):.0f}x from {sizes[0]} to "
                     f"{sizes[-1]})")
    for size in sizes:
        w, h = (int(x) for x in size.split("x"))
        lines.append(cpu_usage.figures_line(size, result["results"], TRANSPORTS,
                                            width=w, height=h))
        for quiver in ("quiver", "quiver-loan"):
            lines.append(cpu_usage.goals_line(size, result["results"], quiver,
                                              "json-base64-stdio", width=w, height=h))
    return "\n".join(lines)


def plot(result: dict, png: pathlib.Path) -> None:
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    sizes: dict = {}
    for transport in TRANSPORTS:
        rows = sorted((r["bytes"], r["median_us"], r.get("width"), r.get("height"))
                      for r in result["results"]
                      if r.get("transport") == transport and r.get("available", True))
        if rows:
            ax.plot([b for b, *_ in rows], [us / 1e3 for _, us, *_ in rows], marker="o",
                    label=transport)
            sizes.update({b: f"{w}x{h}\n{b / 1e6:.1f} MB" for b, _, w, h in rows})
    ax.axhline(2.0, color="grey", linestyle=":", linewidth=1, label="target: 2 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # One tick per image size, labelled with its resolution: no crowded minor labels.
    ax.set_xticks(sorted(sizes))
    ax.set_xticklabels([sizes[b] for b in sorted(sizes)])
    ax.xaxis.set_minor_locator(plt.NullLocator())  # the image ticks alone
    ax.set_xlabel("RGBA image (width x height, bytes)")
    ax.set_ylabel("median time, producer to consumer, ms (log)")
    ax.set_title("W2: an image to another process, Quiver vs JSON + base64")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import suite  # only as a script: the module itself never depends on the driver

    suite.standalone(sys.modules[__name__])

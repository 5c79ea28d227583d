"""An Evidence worker: answers CMD_STREAM_START (its result streams) and
CMD_EXTRACT_EVIDENCE {file_path, page, id}: renders a 1920x1080 RGBA Evidence frame and a
10,000-row Ledger batch for the page (generated: no external files), publishes both in shared
memory and answers RES_DATA_READY with their safe handles.

    python3 examples/evidence/worker.py [--die-after N]   (a node under quiver run)

--die-after N: SIGKILL itself while handling its Nth command (the test's worker killed
mid-run: its core retries that command on another worker).
"""

import argparse
import os
import signal

import numpy as np
import pyarrow as pa

from quiver import control

ROWS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--die-after", type=int, default=0)
    args = parser.parse_args()
    streams = control.Streams()
    handled = 0
    rows = np.arange(ROWS, dtype=np.int64)
    codes = pa.array([f"code-{i % 97}" for i in range(ROWS)])

    def extract(command: control.Envelope) -> control.Envelope:
        nonlocal handled
        handled += 1
        if handled == args.die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        page = int(command.payload["id"])
        frame_stream = next(n for n in streams._publishers if n.startswith("evidence-frames-"))
        ledger_stream = next(n for n in streams._publishers if n.startswith("evidence-ledger-"))
        frames = streams.publisher(frame_stream)
        with frames.loan_image(1920, 1080, "RGBA8") as pixels:   # rendered in place
            pixels[..., :3] = page % 251
            pixels[..., 3] = 255
        frame = control.handle_for_last(frames, "tensor")
        ledger = streams.publisher(ledger_stream)
        ledger.publish(pa.record_batch({
            "page": pa.array(np.full(ROWS, page, np.int64)), "row": pa.array(rows),
            "amount": pa.array(rows * 0.25 + page), "code": codes}))
        return control.Envelope(type="RES_DATA_READY", payload={
            "file_path": command.payload["file_path"], "page": command.payload["page"],
            "shm_handle": frame.to_json(),
            "ledger": control.handle_for_last(ledger, "arrow_stream").to_json()})

    control.Worker({"CMD_EXTRACT_EVIDENCE": extract}, streams=streams).serve()


if __name__ == "__main__":
    main()

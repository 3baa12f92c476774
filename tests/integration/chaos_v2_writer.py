#!/usr/bin/python3
"""A counting worker for the chaos test, writing the statherd v2 format (clients/python/statherd).

    chaos_v2_writer.py SOURCE_DIR TOTALS_FILE SEED RATE DURATION READY_FILE

Environment: STATHERD_DIR and STATHERD_APP (the stat file is $STATHERD_DIR/$STATHERD_APP-<pid>.statherd).
Counters: `requests` +1 per round, `bytes_out` +randint(1, 1000) per round, RATE rounds a second,
for DURATION seconds or until SIGTERM. READY_FILE is created once the stat file exists and
SIGTERM is handled (a SIGTERM before that would kill it without totals). On exit it writes TOTALS_FILE atomically:
{"app", "pid", "path", "rounds", "counters": {name: exact total}}; the totals are what it added,
checked against what its stat file holds (exit 3 if they differ).
"""

import json
import os
import random
import signal
import sys
import time


def main(argv):
    source_dir, totals_file, ready_file = argv[1], argv[2], argv[6]
    seed, rate, duration = int(argv[3]), float(argv[4]), float(argv[5])
    sys.path.insert(0, os.path.join(source_dir, "clients", "python"))
    import statherd

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    rng = random.Random(seed)
    requests = statherd.Counter("requests", "rounds done")
    bytes_out = statherd.Counter("bytes_out", "random amounts")
    added = {"requests": 0, "bytes_out": 0}
    with open(ready_file, "w") as f:
        f.write(statherd.stat_file_path() + "\n")
    start = time.monotonic()
    rounds = 0
    while not stopping and time.monotonic() - start < duration:
        while time.monotonic() >= start + rounds / rate:
            rounds += 1
            amount = rng.randint(1, 1000)
            requests.inc()
            bytes_out.inc(amount)
            added["requests"] += 1
            added["bytes_out"] += amount
        time.sleep(min(max(start + rounds / rate - time.monotonic(), 0.001), 0.05))

    in_file = {"requests": requests.get(), "bytes_out": bytes_out.get()}
    result = {"app": os.environ.get("STATHERD_APP"), "pid": os.getpid(),
              "path": statherd.stat_file_path(), "rounds": rounds, "counters": added}
    tmp = f"{totals_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, sort_keys=True)
    os.replace(tmp, totals_file)
    if in_file != added:
        print(f"stat file holds {in_file}, added {added}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

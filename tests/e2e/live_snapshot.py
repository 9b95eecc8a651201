#!/usr/bin/python3
"""Live snapshots of a clone while NBD writers stamp its blocks.

Usage: live_snapshot.py DAXSTORE IMAGE SOCKET VOLUME BLOCKS ROUNDS

Writer threads, each with its own NBD connection, overwrite 4 KiB blocks
of VOLUME with stamps: the block's number and a sequence number taken from
one counter when the write starts, repeated over the block. Each thread
owns the blocks b with b % threads == its index, so the writes to one
block are ordered by their sequence numbers. Each round, while the writes
go on: note every write acknowledged so far, run `daxstore image snapshot
IMAGE snapN --volume VOLUME` (through the server's control socket), note
the sequence counter once it has returned, copy the snapshot's export
out with nbdcopy, check it, and delete the snapshot. Every block of the
snapshot must hold a whole stamp of its own block that was written (or the
initial stamp, sequence 0), no older than the last write to that block
acknowledged before the request, and started before the reply.
"""
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time

import nbd

BS = 4096
MAGIC = b"DXSTAMP1"
THREADS = 4


def stamp(block, seq):
    return struct.pack("<8sQQQ", MAGIC, block, seq, seq ^ 0xFFFFFFFFFFFFFFFF) * (
        BS // 32)


def parse(data, block):
    """The sequence number a block holds, or an error string."""
    magic, b, seq, inv = struct.unpack_from("<8sQQQ", data)
    if magic != MAGIC or b != block or inv != seq ^ 0xFFFFFFFFFFFFFFFF:
        return None, "block %d holds no stamp of its own (%r)" % (block,
                                                                   data[:32])
    if data != stamp(block, seq):
        return None, "block %d: a torn stamp (seq %d)" % (block, seq)
    return seq, None


class Writers:

    def __init__(self, uri, blocks):
        self.uri = uri
        self.blocks = blocks
        self.lock = threading.Lock()
        self.next_seq = 1
        self.issued = {}  # seq -> block, for every write started
        self.acked = [0] * blocks  # last acknowledged seq per block
        self.error = None
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(i,)) for i in range(THREADS)
        ]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        if self.error:
            raise SystemExit("FAIL: writer: %s" % self.error)

    def run(self, index):
        try:
            h = nbd.NBD()
            h.connect_uri(self.uri)
            mine = list(range(index, self.blocks, THREADS))
            i = 0
            while not self.stop.is_set():
                block = mine[(i * 7919) % len(mine)]
                i += 1
                with self.lock:
                    seq = self.next_seq
                    self.next_seq += 1
                    self.issued[seq] = block
                h.pwrite(stamp(block, seq), block * BS)
                with self.lock:
                    self.acked[block] = seq
            h.shutdown()
        except Exception as e:  # reported by finish()
            self.error = repr(e)
            self.stop.set()

    def acked_now(self):
        with self.lock:
            return list(self.acked)

    def seq_now(self):
        with self.lock:
            return self.next_seq


def check_snapshot(path, blocks, before, after, issued):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != blocks * BS:
        return "the snapshot has %d bytes, not %d" % (len(data), blocks * BS)
    newer = 0
    for b in range(blocks):
        seq, err = parse(data[b * BS:(b + 1) * BS], b)
        if err:
            return err
        if seq != 0 and issued.get(seq) != b:
            return "block %d holds seq %d, never written there" % (b, seq)
        if seq < before[b]:
            return ("block %d holds seq %d, older than seq %d acknowledged "
                    "before the request" % (b, seq, before[b]))
        if seq >= after:
            return ("block %d holds seq %d, started after the reply (the "
                    "counter was at %d)" % (b, seq, after))
        newer += seq > before[b]
    print("  every block checked; %d hold a write newer than the last one "
          "acknowledged before the request" % newer)
    return None


def main():
    daxstore, image, sock, volume, blocks, rounds = sys.argv[1:]
    blocks, rounds = int(blocks), int(rounds)
    uri = "nbd+unix:///%s?socket=%s" % (volume, sock)
    w = Writers(uri, blocks)
    w.start()
    tmp = tempfile.mkdtemp(dir=os.path.dirname(image))
    try:
        for r in range(1, rounds + 1):
            time.sleep(0.3)  # let writes pile up
            name = "snap%d" % r
            before = w.acked_now()
            out = subprocess.run(
                [daxstore, "image", "snapshot", image, name, "--volume", volume],
                capture_output=True, text=True)
            after = w.seq_now()
            if out.returncode != 0:
                raise SystemExit("FAIL: image snapshot: " + out.stderr)
            dst = os.path.join(tmp, name + ".raw")
            # Exported while the writers go on.
            subprocess.run(["nbdcopy", "nbd+unix:///%s?socket=%s" % (name, sock),
                            dst], check=True)
            with w.lock:
                issued = dict(w.issued)
            done = w.seq_now() - 1
            print("round %d: %d blocks written and acknowledged before the request, "
                  "counter %d at the reply, %d writes so far" %
                  (r, sum(1 for s in before if s), after, done))
            err = check_snapshot(dst, blocks, before, after, issued)
            if err:
                raise SystemExit("FAIL: round %d: %s" % (r, err))
            if w.error:
                break
            os.unlink(dst)
            subprocess.run([daxstore, "image", "delete", image, name],
                           check=True, capture_output=True)
    finally:
        w.finish()
    # All writes are acknowledged now: the volume holds the last of each.
    h = nbd.NBD()
    h.connect_uri(uri)
    for b in range(blocks):
        seq, err = parse(h.pread(BS, b * BS), b)
        if err or seq != w.acked[b]:
            raise SystemExit("FAIL: %s holds %s at block %d, not seq %d" %
                             (volume, err or seq, b, w.acked[b]))
    h.shutdown()
    print("live snapshot: ok (%d rounds, %d writes)" % (rounds, w.next_seq - 1))


if __name__ == "__main__":
    main()

// A mirror job: copies one served volume to a Target (an NBD export on
// another host) while guests keep writing it, modelled on QEMU's
// blockdev-mirror.
//
//  1. Attaches a write tracker to the volume (Image::TrackWrites).
//  2. Bulk pass: the volume's allocated blocks in offset order; holes are
//     skipped (the target must read as zeros: a fresh image; a target
//     whose block status cannot say so gets its holes written as zeros),
//     blocks of zeros go as write-zeroes, the rest as writes.
//  3. Then passes over the blocks the guests wrote meanwhile, until a
//     pass finds at most `ready_blocks` of them: the state is then
//     "ready", and stays so while passes keep up.
//  4. Complete (only when ready): fences the volume (writes fail with
//     EROFS from then on: the guest must be paused first), copies the last
//     marked blocks, flushes the target and reports "completed". Every
//     write acknowledged before the fence is then on the target, durable.
//     The fence stays until Cancel, so a late write cannot be acknowledged
//     on the source and missing on the target.
//  5. Cancel: ends the job; the target is left as it is; a completed job's
//     fence is lifted (the source goes on, the target is stale).
// A failing target (an error, a disconnect, no answer for the I/O
// timeout) ends the job "failed" with the error; the source volume, its
// fence lifted, goes on serving as before.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "daxstore/image.h"
#include "mirror/target.h"

namespace daxstore::mirror {

enum class State { kRunning, kReady, kCompleted, kCancelled, kFailed };
const char* StateName(State s);

struct JobOptions {
  std::string volume;  // for status and messages
  std::string target;  // the target's name (a URI) for status and messages
  // Ready once a pass finds at most this many blocks to copy again.
  uint64_t ready_blocks = 64;
};

struct JobStatus {
  std::string volume, target;
  State state = State::kRunning;
  bool ready = false;         // in sync (the state is kReady or kCompleted)
  uint64_t bytes_total = 0;   // bulk bytes plus every dirty block taken
  uint64_t bytes_done = 0;    // of those, written to the target
  uint64_t zero_bytes = 0;    // of bytes_done, sent as write-zeroes
  uint64_t dirty_blocks = 0;  // marked now, not yet taken
  uint64_t passes = 0;        // dirty passes after the bulk pass
  std::string error;          // why the job failed
};

class Job {
 public:
  // Checks the target's size against the volume's (kInvalidArgument
  // naming both otherwise), attaches the tracker and starts the job's
  // thread. `volume` is the job's own handle on the volume.
  static Result<std::unique_ptr<Job>> Start(Image volume,
                                            std::unique_ptr<Target> target,
                                            const JobOptions& o);
  ~Job();  // cancels a running job and waits for its thread

  JobStatus Query() const;
  // Step 4; waits until the job has completed or failed. kBusy unless
  // the job is ready.
  Status Complete();
  // Step 5; waits for the job's thread. kInvalidArgument on a job that
  // failed or was cancelled already.
  Status Cancel();

  struct Impl;

 private:
  explicit Job(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace daxstore::mirror

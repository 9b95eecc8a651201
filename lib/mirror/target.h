// Where a mirror writes: an NBD export reached through libnbd
// (nbd_target.cc), or a test's double. Writes may be queued; Drain waits
// for every queued one and returns the first error.
//
// Thread safety: one thread calls everything except Abort, which any
// thread may call at any time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "daxstore/status.h"

namespace daxstore::mirror {

class Target {
 public:
  virtual ~Target() = default;
  // The export's size in bytes.
  virtual uint64_t size() const = 0;
  // Whether the server reports block status (NBD base:allocation).
  virtual bool HasBlockStatus() const = 0;
  // Whether every byte of the export reads as zeros, as its block status
  // says. False when the server reports no block status.
  virtual Result<bool> KnownZero() = 0;
  // Queues a write of `data` (copied) at `offset`.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Queues a write-zeroes (NBD_CMD_WRITE_ZEROES; the server may punch).
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
  // Waits for every queued request.
  virtual Status Drain() = 0;
  // Drain, then a flush: everything written is durable on the server.
  virtual Status Flush() = 0;
  // Makes a blocked or later call fail soon with kIoError "cancelled".
  virtual void Abort() = 0;
  // Ends the connection (politely, if it is still up); every later call
  // fails.
  virtual void Close() = 0;
};

struct NbdTargetOptions {
  // nbd://HOST[:PORT]/EXPORT, nbds://..., nbd+unix:///EXPORT?socket=PATH,
  // nbds+unix://... (libnbd's URIs; nbds requires TLS).
  std::string uri;
  bool tls = false;              // require TLS even on an nbd:// URI
  std::string tls_psk_file;      // PSK key file (psktool's format)
  std::string tls_certificates;  // directory of X.509 certificates
  std::string tls_username;      // the PSK or certificate user name
  // A request not answered this long after the mirror waits for it (or a
  // connection not made in this long) fails.
  int io_timeout_ms = 30000;
};

// Connects to the export (TLS as asked) and reads its size; fails with a
// message naming the URI when the server is unreachable, refuses the
// export, or offers it read-only.
Result<std::unique_ptr<Target>> ConnectNbd(const NbdTargetOptions& o);

}  // namespace daxstore::mirror

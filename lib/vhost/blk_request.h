// virtio-blk requests: header, data, status byte (virtio spec 5.2.6). The
// data moves directly between guest memory and the image (Readv/Writev on
// iovecs that point into guest memory). A malformed request gets
// VIRTIO_BLK_S_IOERR; an unknown type VIRTIO_BLK_S_UNSUPP.
#pragma once

#include <linux/virtio_blk.h>

#include <cstdint>
#include <string>

#include "daxstore/image.h"
#include "vhost/dirty_log.h"
#include "vhost/virtqueue.h"

namespace daxstore::vhost {

struct BlkLimits {
  uint32_t seg_max = 126;
  uint32_t max_discard_sectors = 1u << 22;  // 2 GiB per segment
  uint32_t max_discard_seg = 128;
  uint32_t max_write_zeroes_sectors = 1u << 22;
  uint32_t max_write_zeroes_seg = 128;
};

struct BlkDevice {
  Image* image = nullptr;
  bool read_only = false;
  std::string serial;  // up to 20 bytes are reported
  BlkLimits limits;
};

// Executes one chain; returns the bytes written into device-writable
// buffers (the used length). A chain without room for the status byte gets
// nothing written and length 0.
uint32_t HandleBlkRequest(const BlkDevice& dev, const Chain& chain);

// Marks in `log` the guest pages HandleBlkRequest wrote for a used length
// of `len`: the first len - 1 device-writable bytes (data) and the last one
// (the status byte). False if the log does not cover one of them.
bool LogBlkWrites(const DirtyLog& log, const Chain& chain, uint32_t len);

// The config space a front end reads with GET_CONFIG.
virtio_blk_config MakeBlkConfig(const BlkDevice& dev, uint16_t num_queues);

}  // namespace daxstore::vhost

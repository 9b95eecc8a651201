#include "vhost/blk_request.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

namespace daxstore::vhost {
namespace {

constexpr uint64_t kSector = 512;

// Copies up to n bytes at `skip` of an iovec list into dst.
size_t Gather(const std::vector<iovec>& iov, uint64_t skip, void* dst,
              size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  size_t done = 0;
  for (const auto& v : iov) {
    if (done == n) break;
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    size_t k = std::min(v.iov_len - skip, n - done);
    std::memcpy(out + done, static_cast<uint8_t*>(v.iov_base) + skip, k);
    done += k;
    skip = 0;
  }
  return done;
}

// The bytes [skip, skip + n) of an iovec list as a new iovec list.
std::vector<iovec> Slice(const std::vector<iovec>& iov, uint64_t skip,
                         uint64_t n) {
  std::vector<iovec> r;
  for (const auto& v : iov) {
    if (n == 0) break;
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    size_t k = std::min<uint64_t>(v.iov_len - skip, n);
    if (k > 0) r.push_back({static_cast<uint8_t*>(v.iov_base) + skip, k});
    n -= k;
    skip = 0;
  }
  return r;
}

// Copies src into the iovec list from its start; returns bytes copied.
size_t Scatter(const std::vector<iovec>& iov, const void* src, size_t n) {
  size_t done = 0;
  for (const auto& v : iov) {
    size_t k = std::min(v.iov_len, n - done);
    std::memcpy(v.iov_base, static_cast<const uint8_t*>(src) + done, k);
    done += k;
    if (done == n) break;
  }
  return done;
}

bool InRange(const Image& img, uint64_t sector, uint64_t bytes) {
  if (sector > img.virtual_size() / kSector) return false;
  return bytes <= img.virtual_size() - sector * kSector;
}

uint8_t Segments(const BlkDevice& dev, const Chain& c, uint32_t type) {
  uint64_t n = c.out_bytes - sizeof(virtio_blk_outhdr);
  const bool discard = type == VIRTIO_BLK_T_DISCARD;
  uint32_t max_seg =
      discard ? dev.limits.max_discard_seg : dev.limits.max_write_zeroes_seg;
  uint32_t max_sectors = discard ? dev.limits.max_discard_sectors
                                 : dev.limits.max_write_zeroes_sectors;
  using Seg = virtio_blk_discard_write_zeroes;
  if (n == 0 || n % sizeof(Seg) != 0 || n / sizeof(Seg) > max_seg)
    return VIRTIO_BLK_S_IOERR;
  std::vector<Seg> segs(n / sizeof(Seg));
  Gather(c.out, sizeof(virtio_blk_outhdr), segs.data(), n);
  for (const auto& s : segs) {
    uint64_t bytes = uint64_t{s.num_sectors} * kSector;
    if (s.num_sectors > max_sectors || !InRange(*dev.image, s.sector, bytes))
      return VIRTIO_BLK_S_IOERR;
    if (s.flags & ~uint32_t{VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP})
      return VIRTIO_BLK_S_UNSUPP;
    if (discard && s.flags != 0) return VIRTIO_BLK_S_UNSUPP;
  }
  for (const auto& s : segs) {
    uint64_t off = s.sector * kSector,
             bytes = uint64_t{s.num_sectors} * kSector;
    Status st = discard ? dev.image->Discard(off, bytes)
                        : dev.image->WriteZeroes(off, bytes);
    if (!st.ok()) return VIRTIO_BLK_S_IOERR;
  }
  return VIRTIO_BLK_S_OK;
}

}  // namespace

uint32_t HandleBlkRequest(const BlkDevice& dev, const Chain& c) {
  if (c.in_bytes == 0) return 0;  // nowhere to put the status
  // The last device-writable byte is the status.
  uint64_t data_in = c.in_bytes - 1;
  std::vector<iovec> status_iov = Slice(c.in, data_in, 1);
  uint32_t written = 0;
  uint8_t status = VIRTIO_BLK_S_IOERR;

  virtio_blk_outhdr h{};
  if (c.out_bytes >= sizeof(h) &&
      Gather(c.out, 0, &h, sizeof(h)) == sizeof(h)) {
    uint64_t data_out = c.out_bytes - sizeof(h);
    uint32_t segs = static_cast<uint32_t>(c.out.size() + c.in.size());
    switch (h.type) {
      case VIRTIO_BLK_T_IN:
        if (data_out == 0 && data_in % kSector == 0 &&
            segs <= dev.limits.seg_max + 2 &&
            InRange(*dev.image, h.sector, data_in)) {
          auto iov = Slice(c.in, 0, data_in);
          if (dev.image->Readv(h.sector * kSector, iov).ok()) {
            status = VIRTIO_BLK_S_OK;
            written = static_cast<uint32_t>(data_in);
          }
        }
        break;
      case VIRTIO_BLK_T_OUT:
        if (!dev.read_only && data_in == 0 && data_out % kSector == 0 &&
            segs <= dev.limits.seg_max + 2 &&
            InRange(*dev.image, h.sector, data_out)) {
          auto iov = Slice(c.out, sizeof(h), data_out);
          if (dev.image->Writev(h.sector * kSector, iov).ok())
            status = VIRTIO_BLK_S_OK;
        }
        break;
      case VIRTIO_BLK_T_FLUSH:
        if (dev.image->Flush().ok()) status = VIRTIO_BLK_S_OK;
        break;
      case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES] = {};
        std::memcpy(id, dev.serial.data(),
                    std::min(dev.serial.size(), sizeof(id)));
        size_t n = std::min<uint64_t>(data_in, sizeof(id));
        written = static_cast<uint32_t>(Scatter(Slice(c.in, 0, n), id, n));
        status = VIRTIO_BLK_S_OK;
        break;
      }
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        if (!dev.read_only && data_in == 0) status = Segments(dev, c, h.type);
        break;
      default:
        status = VIRTIO_BLK_S_UNSUPP;
    }
  }
  Scatter(status_iov, &status, 1);
  return written + 1;
}

bool LogBlkWrites(const DirtyLog& log, const Chain& c, uint32_t len) {
  if (len == 0 || c.in_bytes == 0) return true;
  bool ok = true;
  uint64_t data = len - 1;  // bytes from the start of the writable part
  for (size_t i = 0; i < c.in.size() && data > 0; ++i) {
    const uint64_t k = std::min<uint64_t>(c.in[i].iov_len, data);
    ok &= log.Mark(c.in_gpa[i], k);
    data -= k;
  }
  // The status byte: the last byte of the last non-empty buffer.
  for (size_t i = c.in.size(); i-- > 0;)
    if (c.in[i].iov_len > 0) {
      ok &= log.Mark(c.in_gpa[i] + c.in[i].iov_len - 1, 1);
      break;
    }
  return ok;
}

virtio_blk_config MakeBlkConfig(const BlkDevice& dev, uint16_t num_queues) {
  virtio_blk_config c{};
  c.capacity = dev.image->virtual_size() / kSector;
  c.seg_max = dev.limits.seg_max;
  c.blk_size = dev.image->logical_block_size();
  c.num_queues = num_queues;
  c.max_discard_sectors = dev.limits.max_discard_sectors;
  c.max_discard_seg = dev.limits.max_discard_seg;
  c.discard_sector_alignment = dev.image->block_size() / kSector;
  c.max_write_zeroes_sectors = dev.limits.max_write_zeroes_sectors;
  c.max_write_zeroes_seg = dev.limits.max_write_zeroes_seg;
  c.write_zeroes_may_unmap = 1;
  return c;
}

}  // namespace daxstore::vhost

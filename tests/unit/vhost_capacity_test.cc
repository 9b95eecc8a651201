// A full image under vhost-user-blk: a write that needs a block when none
// is free completes with VIRTIO_BLK_S_IOERR, and the backend goes on: reads
// are served, a discard frees blocks and writes succeed again.
#include <vector>

#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using Bytes = std::vector<uint8_t>;

TEST_F(VhostTest, FullImageFailsWritesWithIoerrAndServesReads) {
  // 8 MiB promised, 64 data blocks (256 KiB) held.
  ImageOptions io;
  io.virtual_size = kSize;
  io.lanes = 8;
  io.data_blocks = 64;
  io.allow_overcommit = true;
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  auto img = Image::Create(dir_ / "disk.img", io, mo);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  image_ = std::make_unique<Image>(std::move(img).value());
  StartServer();
  auto f = Attach();
  ASSERT_TRUE(f);

  const Bytes block(4096, 0x5a);
  for (uint64_t b = 0; b < 64; b++) {
    ASSERT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, b * 8, block, {}),
              VIRTIO_BLK_S_OK)
        << "block " << b;
  }
  EXPECT_EQ(image_->Info()->free_blocks(), 0u);
  // No block left: a write to a hole and, since every write goes out of
  // place, an overwrite fail; the blocks keep their data.
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 64 * 8, block, {}),
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 0, Bytes(4096, 0x77), {}),
            VIRTIO_BLK_S_IOERR);
  Bytes buf(4096);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 0, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, block);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 64 * 8, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, Bytes(4096, 0));

  // Discard blocks 0-3: four free blocks, and writes succeed again.
  virtio_blk_discard_write_zeroes seg{0, 32, 0};
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_DISCARD, 0,
                        {reinterpret_cast<uint8_t*>(&seg), sizeof(seg)}, {}),
            VIRTIO_BLK_S_OK);
  EXPECT_EQ(image_->Info()->free_blocks(), 4u);
  const Bytes other(4096, 0x66);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 64 * 8, other, {}),
            VIRTIO_BLK_S_OK);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 8 * 8, other, {}),
            VIRTIO_BLK_S_OK);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 64 * 8, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, other);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 0, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, Bytes(4096, 0));
  EXPECT_EQ(image_->Info()->free_blocks(), 3u);
}

}  // namespace
}  // namespace daxstore::testing

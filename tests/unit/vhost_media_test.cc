// A media error under vhost-user-blk: a read of a block on a bad block of
// the media completes with VIRTIO_BLK_S_IOERR; the backend serves every
// other request, and a whole-block write replaces the block.
#include <fstream>
#include <vector>

#include "image/format.h"
#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using Bytes = std::vector<uint8_t>;

TEST_F(VhostTest, MediaErrorFailsOneRequest) {
  Serve();
  ASSERT_TRUE(image_->Write(0, Bytes(8192, 0x3c).data(), 8192).ok());
  StopServer();
  image_.reset();
  // List image block 1's data block (data block 1: one writer, in order)
  // bad, as an emulated namespace does.
  const std::string path = dir_ / "disk.img";
  image::Superblock sb{};
  std::ifstream(path, std::ios::binary)
      .read(reinterpret_cast<char*>(&sb), sizeof sb);
  WriteText(path + ".badblocks",
            std::to_string(sb.data_offset + 4096) + " 512\n");
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  auto img = Image::Open(path, mo);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  image_ = std::make_unique<Image>(std::move(img).value());
  StartServer();

  auto f = Attach();
  ASSERT_TRUE(f);
  Bytes buf(4096);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 8, {}, buf), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 0, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, Bytes(4096, 0x3c));
  // Part of the block: the rest cannot be read, so the write fails.
  Bytes sector(512, 0x77);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 9, sector, {}),
            VIRTIO_BLK_S_IOERR);
  Bytes block(4096, 0x77);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 8, block, {}), VIRTIO_BLK_S_OK);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 8, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, block);
}

}  // namespace
}  // namespace daxstore::testing

/* Creates an image, writes with iovecs, reads back, flushes, discards and
 * prints info, through the daxstore C ABI. Usage: copy_in_out IMAGE_PATH
 * (the path must not exist yet). Exits 0 and prints "ok" when every check
 * holds. */
#include <daxstore/daxstore.h>
#include <stdio.h>
#include <string.h>

static int check(long long rc, const char* what) {
  if (rc < 0) {
    fprintf(stderr, "copy_in_out: %s: %s (%s)\n", what, daxstore_last_error(),
            daxstore_strerror((int)rc));
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  struct daxstore_image_options opt;
  struct daxstore_image_info info;
  daxstore_image* img = NULL;
  static char a[4096], b[8192], back[12288];
  struct iovec out[2], in[1];
  int i;

  if (argc != 2) {
    fprintf(stderr, "usage: copy_in_out IMAGE_PATH\n");
    return 2;
  }
  daxstore_image_options_init(&opt);
  opt.virtual_size = 16u << 20; /* 16 MiB */
  if (check(daxstore_image_create(argv[1], &opt, &img), "create")) return 1;

  memset(a, 'A', sizeof a);
  for (i = 0; i < (int)sizeof b; ++i) b[i] = (char)('a' + i % 26);
  out[0].iov_base = a;
  out[0].iov_len = sizeof a;
  out[1].iov_base = b;
  out[1].iov_len = sizeof b;
  if (daxstore_image_pwritev(img, out, 2, 1u << 20) != 12288) {
    check(-1, "pwritev");
    return 1;
  }
  if (check(daxstore_image_flush(img), "flush")) return 1;
  daxstore_image_close(img);

  /* Reopen read-only: the data is durable and writes are refused. */
  if (check(daxstore_image_open(argv[1], NULL, DAXSTORE_OPEN_READ_ONLY, &img),
            "open"))
    return 1;
  in[0].iov_base = back;
  in[0].iov_len = sizeof back;
  if (daxstore_image_preadv(img, in, 1, 1u << 20) != 12288 ||
      memcmp(back, a, sizeof a) != 0 ||
      memcmp(back + sizeof a, b, sizeof b) != 0) {
    fprintf(stderr, "copy_in_out: read back differs\n");
    return 1;
  }
  if (daxstore_image_pwrite(img, a, 512, 0) >= 0) {
    fprintf(stderr, "copy_in_out: a read-only handle accepted a write\n");
    return 1;
  }
  printf("read-only write refused: %s\n", daxstore_last_error());
  daxstore_image_close(img);

  if (check(daxstore_image_open(argv[1], NULL, 0, &img), "open")) return 1;
  if (check(daxstore_image_info(img, &info), "info")) return 1;
  printf("after write: virtual_size=%llu allocated_bytes=%llu\n",
         (unsigned long long)info.virtual_size,
         (unsigned long long)info.allocated_bytes);
  if (check(daxstore_image_discard(img, 1u << 20, 12288), "discard")) return 1;
  if (check(daxstore_image_pread(img, back, 4096, (1u << 20) + 4096), "pread"))
    return 1;
  for (i = 0; i < 4096; ++i) {
    if (back[i] != 0) {
      fprintf(stderr, "copy_in_out: discarded data reads non-zero\n");
      return 1;
    }
  }
  if (check(daxstore_image_info(img, &info), "info")) return 1;
  printf(
      "after discard: allocated_bytes=%llu block_size=%u "
      "logical_block_size=%u\n",
      (unsigned long long)info.allocated_bytes, daxstore_image_block_size(img),
      daxstore_image_logical_block_size(img));
  /* Out of range: a clear error, nothing written. */
  if (daxstore_image_pwrite(img, a, 4096, daxstore_image_size(img)) >= 0) {
    fprintf(stderr, "copy_in_out: a write past the end succeeded\n");
    return 1;
  }
  printf("past the end: %s\n", daxstore_last_error());
  daxstore_image_close(img);
  printf("ok\n");
  return 0;
}

/* The daxstore C ABI: pmem-native VM disk images from C, Rust or any
 * language with a C FFI. No C++ types; compiles as C99 and C11.
 *
 * Errors: every function that can fail returns 0 (or a non-negative
 * count) on success and a negative errno-style code on failure (-EINVAL,
 * -ENOENT, -EBUSY, -ENOSPC, -EROFS, -EUCLEAN for a corrupt image, -EIO, ...).
 * The message explaining the most recent failure on the calling thread is
 * kept in thread-local storage: daxstore_last_error() returns it until the
 * next failing call on the same thread. daxstore_strerror(code) names a
 * code without context.
 *
 * Durability: every write, discard and write-zeroes call is durable when it
 * returns; daxstore_image_flush is a fence and never slow.
 *
 * Thread safety: functions taking a `daxstore_image *` may be called from
 * many threads on the same handle at once, except daxstore_image_close
 * (which must not race with any other call on that handle). Creating and
 * opening are thread-safe. */
#ifndef DAXSTORE_DAXSTORE_H
#define DAXSTORE_DAXSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An open image. Opaque; freed by daxstore_image_close. */
typedef struct daxstore_image daxstore_image;

/* How to lay out a new image. Call daxstore_image_options_init first, then
 * set the fields you need. */
struct daxstore_image_options {
  uint64_t virtual_size;       /* bytes, a multiple of logical_block_size */
  uint32_t logical_block_size; /* 512 (default) or 4096 */
  uint32_t block_size;         /* power of two, 4 KiB (default) to 2 MiB */
  uint32_t lanes;              /* concurrent-writer slots, 1 to 1024 (64) */
  uint32_t flags;              /* 0 or DAXSTORE_EMULATED_PMEM */
};

/* What daxstore_image_info reports. */
struct daxstore_image_info {
  uint64_t virtual_size;    /* bytes the guest sees */
  uint64_t allocated_bytes; /* data blocks in use, in bytes */
  uint64_t metadata_bytes;  /* everything that is not a data block */
  uint64_t data_blocks;     /* physical capacity, in blocks */
  uint32_t block_size;
  uint32_t logical_block_size;
  uint32_t lanes;
};

/* daxstore_image_open flags. */
#define DAXSTORE_OPEN_READ_ONLY 1u
/* Open and create flag: treat a plain file as pmem whose memory controller
 * is the persistence domain (flush with CLWB, no msync), as the emulated
 * bus does. For tests and benchmarks without pmem; a real power cut on a
 * plain file may then lose acknowledged writes. */
#define DAXSTORE_EMULATED_PMEM 2u

/* Thread-safe. Fills `options` with the defaults (virtual_size 0). */
void daxstore_image_options_init(struct daxstore_image_options* options);

/* Thread-safe. Creates an image at `path` (a new sparse file, or an existing
 * file or /dev/daxX.Y formatted whole) and opens it read-write. Fails with
 * -EBUSY if `path` already holds a daxstore image. */
int daxstore_image_create(const char* path,
                          const struct daxstore_image_options* options,
                          daxstore_image** out);

/* Thread-safe. Opens an image, replaying what a crash left. `volume` names
 * a volume inside the image; pass NULL for the image's own disk (the only
 * choice in this version: a name fails with -EOPNOTSUPP). `flags` is 0 or a
 * mix of DAXSTORE_OPEN_READ_ONLY and DAXSTORE_EMULATED_PMEM; writes to a
 * read-only handle fail with -EROFS. */
int daxstore_image_open(const char* path, const char* volume, unsigned flags,
                        daxstore_image** out);

/* Closes the handle (NULL is accepted). Every completed write is already
 * durable. Must not race with any other call on `image`. */
void daxstore_image_close(daxstore_image* image);

/* Vectored I/O at byte `offset`; the range must lie inside the virtual size.
 * Return the number of bytes transferred (all of them) or a negative code;
 * a failed write may have written any subset of its blocks, each wholly. */
ssize_t daxstore_image_preadv(daxstore_image* image, const struct iovec* iov,
                              int iovcnt, uint64_t offset);
ssize_t daxstore_image_pwritev(daxstore_image* image, const struct iovec* iov,
                               int iovcnt, uint64_t offset);
ssize_t daxstore_image_pread(daxstore_image* image, void* buf, size_t count,
                             uint64_t offset);
ssize_t daxstore_image_pwrite(daxstore_image* image, const void* buf,
                              size_t count, uint64_t offset);

/* Makes earlier completed writes durable (they already are: a fence). */
int daxstore_image_flush(daxstore_image* image);
/* Both make [offset, offset + length) read as zeros; whole blocks become
 * holes and their space is freed. */
int daxstore_image_discard(daxstore_image* image, uint64_t offset,
                           uint64_t length);
int daxstore_image_write_zeroes(daxstore_image* image, uint64_t offset,
                                uint64_t length);

/* Geometry; never fail on a valid handle. */
uint64_t daxstore_image_size(const daxstore_image* image);
uint32_t daxstore_image_block_size(const daxstore_image* image);
uint32_t daxstore_image_logical_block_size(const daxstore_image* image);

/* Counts allocated blocks (O(data blocks)) and fills `info`. */
int daxstore_image_info(const daxstore_image* image,
                        struct daxstore_image_info* info);

/* The message of the calling thread's most recent failure ("" if none).
 * Valid until the next failing daxstore call on this thread. */
const char* daxstore_last_error(void);
/* A static description of a code returned by this library. */
const char* daxstore_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* DAXSTORE_DAXSTORE_H */

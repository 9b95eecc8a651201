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
  uint32_t flags;              /* 0, DAXSTORE_EMULATED_PMEM, a bus flag */
  uint32_t max_volumes;        /* volume slots (the disk itself, snapshots,
                                  clones), 1 to 64 (2); each slot costs one
                                  block map (8 bytes per block) */
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
/* Open and create flags: look a namespace name up only on the kernel's
 * NVDIMM bus, or only on the emulated bus (its directory is
 * $DAXSTORE_EMULATED_DIR, else /var/lib/daxstore/emulated for root, else
 * ~/.local/share/daxstore/emulated). Without either, the kernel's bus is
 * used when the machine has one, else the emulated bus. */
#define DAXSTORE_OPEN_KERNEL_BUS 4u
#define DAXSTORE_OPEN_EMULATED_BUS 8u

/* Thread-safe. Fills `options` with the defaults (virtual_size 0). */
void daxstore_image_options_init(struct daxstore_image_options* options);

/* Targets. Where a function takes a `path`, it is, in this order: a path (it
 * has a '/' or exists), "daxX.Y" when /dev/daxX.Y exists, a namespace by
 * device ("namespace0.0"), by its dax or block device ("dax0.0", "pmem0")
 * or by its name (ndctl's -n), else a new file in the working directory.
 * A namespace name that matches nothing fails with -ENOENT. */

/* Thread-safe. Creates an image at `path` (a target: a new sparse file, or
 * an existing file, /dev/daxX.Y or namespace formatted whole) and opens it
 * read-write. `options->flags` is 0 or a mix of DAXSTORE_EMULATED_PMEM and
 * one bus flag. Fails with -EBUSY if `path` already holds a daxstore
 * image. */
int daxstore_image_create(const char* path,
                          const struct daxstore_image_options* options,
                          daxstore_image** out);

/* Thread-safe. Opens an image, replaying what a crash left. `volume` names
 * a volume inside the image (a snapshot or a clone); NULL or "" is the
 * image's own disk ("base"). `path` is a target (see above). `flags` is 0
 * or a mix of DAXSTORE_OPEN_READ_ONLY, DAXSTORE_EMULATED_PMEM and one bus
 * flag; writes to a read-only
 * handle or a snapshot fail with -EROFS. An image is open in one process at
 * a time (-EBUSY otherwise); to serve several volumes from one process, open
 * one and use daxstore_image_open_volume for the others. */
int daxstore_image_open(const char* path, const char* volume, unsigned flags,
                        daxstore_image** out);

/* Closes the handle (NULL is accepted). Every completed write is already
 * durable. Must not race with any other call on `image`. */
void daxstore_image_close(daxstore_image* image);

/* Vectored I/O at byte `offset`; the range must lie inside the virtual size.
 * Return the number of bytes transferred (all of them) or a negative code;
 * a failed write may have written any subset of its blocks, each wholly.
 * -EIO: a block of the range lies on a bad block of the media (the message
 * names the guest bytes); other blocks and handles keep working. A write
 * of whole blocks replaces it; a write of part of it fails with -EIO. */
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

/* Snapshots and clones. A snapshot is a read-only, named, point-in-time
 * copy of a volume; a clone is a writable volume that starts as a copy of a
 * snapshot. Both share data blocks with their source copy-on-write, so many
 * clones of one golden image take space only for what each one writes.
 * Names are 1 to 63 bytes. Each of these is crash-atomic and takes time
 * proportional to the virtual size; they may run while other threads do
 * I/O on the image. */

/* A read-only snapshot, named `name`, of the volume `image` is a handle on. */
int daxstore_image_snapshot(daxstore_image* image, const char* name);
/* A writable clone, named `name`, of the snapshot `snapshot`. */
int daxstore_image_clone(daxstore_image* image, const char* snapshot,
                         const char* name);
/* Deletes a snapshot or clone and frees the blocks only it used. -EBUSY if
 * a handle on it is open; the image's own disk cannot be deleted. */
int daxstore_image_delete_volume(daxstore_image* image, const char* name);
/* Another handle, on volume `volume`, of the image `image` belongs to (the
 * two share the engine; close each one). Snapshots open read-only. */
int daxstore_image_open_volume(const daxstore_image* image, const char* volume,
                               daxstore_image** out);

/* One volume, as daxstore_image_list_volumes reports it. */
struct daxstore_volume_info {
  char name[64];            /* NUL-terminated */
  char parent[64];          /* the snapshot a clone came from, the volume a
                               snapshot was taken of; "" for the disk */
  uint32_t snapshot;        /* 1: read-only snapshot */
  uint64_t created_unix_ns; /* creation time */
  uint64_t mapped_blocks;   /* blocks with data in this volume */
  uint64_t unique_blocks;   /* blocks only this volume uses (what deleting
                               it frees) */
};
/* Fills up to `capacity` entries of `volumes` (NULL if 0) and returns how
 * many volumes the image has, or a negative code. */
int daxstore_image_list_volumes(const daxstore_image* image,
                                struct daxstore_volume_info* volumes,
                                size_t capacity);

/* The message of the calling thread's most recent failure ("" if none).
 * Valid until the next failing daxstore call on this thread. */
const char* daxstore_last_error(void);
/* A static description of a code returned by this library. */
const char* daxstore_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* DAXSTORE_DAXSTORE_H */

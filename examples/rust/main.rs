// The daxstore C ABI from Rust through hand-written extern "C" declarations
// (no bindgen, no crates): create an image, write with iovecs, read back,
// discard, print info. Usage: rust_example IMAGE_PATH (must not exist).
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::process::exit;

#[repr(C)]
struct Options {
    virtual_size: u64,
    logical_block_size: u32,
    block_size: u32,
    lanes: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct Info {
    virtual_size: u64,
    allocated_bytes: u64,
    metadata_bytes: u64,
    data_blocks: u64,
    block_size: u32,
    logical_block_size: u32,
    lanes: u32,
}

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

enum Image {}

#[link(name = "daxstore")]
extern "C" {
    fn daxstore_image_options_init(o: *mut Options);
    fn daxstore_image_create(p: *const c_char, o: *const Options, out: *mut *mut Image) -> c_int;
    fn daxstore_image_open(p: *const c_char, v: *const c_char, f: c_uint, out: *mut *mut Image)
        -> c_int;
    fn daxstore_image_close(i: *mut Image);
    fn daxstore_image_pwritev(i: *mut Image, iov: *const IoVec, n: c_int, off: u64) -> isize;
    fn daxstore_image_preadv(i: *mut Image, iov: *const IoVec, n: c_int, off: u64) -> isize;
    fn daxstore_image_flush(i: *mut Image) -> c_int;
    fn daxstore_image_discard(i: *mut Image, off: u64, len: u64) -> c_int;
    fn daxstore_image_info(i: *const Image, info: *mut Info) -> c_int;
    fn daxstore_last_error() -> *const c_char;
}

fn check(rc: i64, what: &str) {
    if rc < 0 {
        let msg = unsafe { CStr::from_ptr(daxstore_last_error()) };
        eprintln!("rust: {}: {} ({})", what, msg.to_string_lossy(), rc);
        exit(1);
    }
}

fn main() {
    let path = match std::env::args().nth(1) {
        Some(p) => CString::new(p).expect("path without NUL"),
        None => {
            eprintln!("usage: rust_example IMAGE_PATH");
            exit(2);
        }
    };
    let mut opt = Options { virtual_size: 0, logical_block_size: 0, block_size: 0, lanes: 0, flags: 0 };
    let mut img: *mut Image = std::ptr::null_mut();
    unsafe {
        daxstore_image_options_init(&mut opt);
        opt.virtual_size = 8 << 20;
        check(daxstore_image_create(path.as_ptr(), &opt, &mut img) as i64, "create");
        let mut a = vec![0x5au8; 4096];
        let mut b: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let out = [
            IoVec { base: a.as_mut_ptr() as *mut c_void, len: a.len() },
            IoVec { base: b.as_mut_ptr() as *mut c_void, len: b.len() },
        ];
        check(daxstore_image_pwritev(img, out.as_ptr(), 2, 65536) as i64, "pwritev");
        check(daxstore_image_flush(img) as i64, "flush");
        daxstore_image_close(img);

        check(daxstore_image_open(path.as_ptr(), std::ptr::null(), 1, &mut img) as i64, "open");
        let mut back = vec![0u8; 8192];
        let inv = [IoVec { base: back.as_mut_ptr() as *mut c_void, len: back.len() }];
        check(daxstore_image_preadv(img, inv.as_ptr(), 1, 65536) as i64, "preadv");
        if back[..4096] != a[..] || back[4096..] != b[..] {
            eprintln!("rust: read back differs");
            exit(1);
        }
        daxstore_image_close(img);

        check(daxstore_image_open(path.as_ptr(), std::ptr::null(), 0, &mut img) as i64, "open");
        let mut info = Info::default();
        check(daxstore_image_info(img, &mut info) as i64, "info");
        println!("rust: allocated_bytes={} after write", info.allocated_bytes);
        if info.allocated_bytes != 8192 {
            eprintln!("rust: expected 8192 allocated bytes");
            exit(1);
        }
        check(daxstore_image_discard(img, 65536, 8192) as i64, "discard");
        check(daxstore_image_info(img, &mut info) as i64, "info");
        println!("rust: allocated_bytes={} after discard", info.allocated_bytes);
        if info.allocated_bytes != 0 {
            exit(1);
        }
        let bogus = CString::new("vol").unwrap();
        let mut none: *mut Image = std::ptr::null_mut();
        if daxstore_image_open(path.as_ptr(), bogus.as_ptr(), 0, &mut none) >= 0 {
            eprintln!("rust: a volume name was accepted");
            exit(1);
        }
        daxstore_image_close(img);
    }
    println!("rust: ok");
}

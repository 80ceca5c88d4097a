//! [`Mapping`]: a file mapped into memory, to read a mount's files the way
//! a loader does (page faults instead of `read`).

use std::fs::File;

/// A read-only private mapping of a whole file, unmapped when dropped.
pub struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// Map all of `file`.
    ///
    /// # Panics
    ///
    /// When the file cannot be mapped.
    pub fn new(file: &File) -> Mapping {
        let len = usize::try_from(file.metadata().unwrap().len()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: a fresh read-only private mapping of a file we hold open;
        // the kernel picks the address, and the result is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(file),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED, "mmap failed");
        Mapping { addr, len }
    }

    /// The mapped bytes, read now (a page fault asks the daemon again when
    /// the kernel dropped the page).
    pub fn bytes(&self) -> Vec<u8> {
        #[allow(unsafe_code)]
        // SAFETY: `addr..addr + len` is our live mapping, readable, and
        // nothing writes to it (read-only, private).
        let bytes = unsafe { std::slice::from_raw_parts(self.addr.cast::<u8>(), self.len) };
        bytes.to_vec()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: unmapping exactly the mapping made in `new`, once.
        unsafe {
            libc::munmap(self.addr, self.len);
        }
    }
}

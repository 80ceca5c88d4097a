//! Fuzz target `heap`: see [`hpkg_format_fuzz::heap`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hpkg_format_fuzz::heap(data));

//! Fuzz target `index_image`: see [`hpkg_format_fuzz::index_image`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hpkg_format_fuzz::index_image(data));

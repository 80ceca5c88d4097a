//! `Toc::parse` allocates per growth step, not per entry: parsing 100 000
//! entries takes O(log n) allocations (vector doublings), counted by a
//! counting global allocator.

mod robust;
use robust as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::synth::synth_toc;
use hpkg_format::Toc;

/// Counts allocations (and reallocations) of the current thread while on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// thread-locals touched are const-initialised `Cell`s, which neither allocate
// nor register destructors.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Parse a synthetic TOC of about `n` entries: (entries, allocations made by
/// `Toc::parse`).
fn parse_counting(n: usize) -> (usize, usize) {
    let synth = synth_toc(n);
    let section = synth.section();
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let toc = Toc::parse(section);
    COUNTING.with(|c| c.set(false));
    let toc = toc.expect("synthetic TOC parses");
    assert_eq!(toc.len(), synth.entries);
    (toc.len(), COUNT.with(Cell::get))
}

#[test]
fn toc_parse_allocations_grow_logarithmically() {
    let (small_n, small) = parse_counting(10_000);
    let (big_n, big) = parse_counting(100_000);
    eprintln!("Toc::parse: {small} allocations for {small_n} entries, {big} for {big_n}");
    assert!(big_n >= 100_000);
    assert!(big < 100, "{big} allocations for {big_n} entries");
    // Ten times the entries: a few more doublings of each vector, no more.
    assert!(
        big <= small + 12,
        "{small} allocations for {small_n} entries but {big} for {big_n}"
    );
}

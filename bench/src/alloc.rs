//! A global allocator that, while [`Counting`] is alive, adds up what is allocated and
//! freed: the heap a structure keeps is the net of the two across its filling. Outside a
//! window it costs one relaxed load per allocation, so the other figures are unaffected.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicBool, AtomicI64, Ordering},
};

static ON: AtomicBool = AtomicBool::new(false);
static NET: AtomicI64 = AtomicI64::new(0);

/// The system allocator, counted while a [`Counting`] window is open.
pub struct CountingAllocator;

fn add(bytes: usize, sign: i64) {
    if ON.load(Ordering::Relaxed) {
        NET.fetch_add(
            sign * i64::try_from(bytes).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }
}

// SAFETY: every call goes to `System` unchanged; the counting only reads the layout.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(layout.size(), -1);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(layout.size(), -1);
        add(new_size, 1);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// An open counting window (one at a time).
pub struct Counting;

impl Counting {
    /// Starts counting from zero.
    pub fn start() -> Self {
        NET.store(0, Ordering::Relaxed);
        ON.store(true, Ordering::Relaxed);
        Self
    }

    /// Bytes allocated and not freed since the start (negative when more was freed).
    pub fn net(&self) -> i64 {
        NET.load(Ordering::Relaxed)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        ON.store(false, Ordering::Relaxed);
    }
}

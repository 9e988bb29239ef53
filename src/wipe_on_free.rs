//! The binary's allocator: the system's, except that no block goes back
//! with its contents in it.
//!
//! The tree, the cipher and the printers wipe the plaintext they hold when
//! they drop it, but a buffer that grows is moved by `realloc`, which frees
//! the old block as it is, and every parser builds its maps, lists and
//! strings by growing them. So every block is zeroed before it is freed,
//! a block that grows is moved by copying it and freeing (so zeroing) the
//! old one, and a block that shrinks has its tail zeroed first. What is
//! freed can no longer hold a secret the process saw.

use std::alloc::{GlobalAlloc, Layout, System};

/// [`System`], zeroing every block it frees.
pub struct WipeOnFree;

// SAFETY: every call is passed on to `System` with the layout it was given;
// blocks are only written to (zeroed) while still allocated.
unsafe impl GlobalAlloc for WipeOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes until freed.
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size <= layout.size() {
            // Shrinking: the tail is zeroed, and the block shrinks where it
            // is (glibc splits it, or remaps its pages) with nothing left
            // behind to copy.
            // SAFETY: the tail is inside the live block; the rest is the
            // caller's contract, passed on.
            unsafe {
                wipe(ptr.add(new_size), layout.size() - new_size);
                return System.realloc(ptr, layout, new_size);
            }
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the
        // caller's contract); the old block stays live until `dealloc`.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let moved = System.alloc(new_layout);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

/// Has the system allocator take memory from the kernel in steps of
/// 32 MiB instead of a page or two at a time. On a large file every core
/// builds part of a tree, and glibc grows each thread's heap one
/// `mprotect` call per page it outgrows (about 2,000 calls and 10 ms for
/// a 10 MB file); the steps are only reserved address space, so the
/// memory a process uses is unchanged. Call before starting any thread.
pub fn grow_heap_in_large_steps() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only changes a tuning parameter of glibc's malloc.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 32 << 20);
    }
}

/// Zeroes `len` bytes at `ptr` in a way the compiler keeps, although the
/// block is freed right after.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { libc::explicit_bzero(ptr.cast(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_keeping_contents() {
        let alloc = WipeOnFree;
        let layout = Layout::from_size_align(16, 8).unwrap();
        unsafe {
            let block = alloc.alloc(layout);
            assert!(!block.is_null());
            for i in 0..16 {
                *block.add(i) = i as u8;
            }
            let grown = alloc.realloc(block, layout, 4096);
            assert!((0..16).all(|i| *grown.add(i) == i as u8));
            let grown_layout = Layout::from_size_align(4096, 8).unwrap();
            let shrunk = alloc.realloc(grown, grown_layout, 8);
            assert!((0..8).all(|i| *shrunk.add(i) == i as u8));
            alloc.dealloc(shrunk, Layout::from_size_align(8, 8).unwrap());
        }
    }
}

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
use std::sync::atomic::AtomicUsize;

/// [`System`], zeroing every block it frees.
pub struct WipeOnFree;

// SAFETY: every call is passed on to `System` with the layout it was given;
// blocks are only written to (zeroed) while still allocated.
unsafe impl GlobalAlloc for WipeOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let block = in_huge_pages(unsafe { System.alloc(layout) }, layout.size());
        advise_heap(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_huge(layout.size()) {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // Advised before it is zeroed, which touches every page (glibc
        // zeroes a large block it takes from the heap).
        // SAFETY: the caller's contract; the block is zeroed before use.
        unsafe {
            let block = self.alloc(layout);
            if !block.is_null() {
                std::ptr::write_bytes(block, 0, layout.size());
            }
            block
        }
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
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

/// The size of a transparent huge page on x86-64 and most arm64 systems.
const HUGE_PAGE: usize = 2 << 20;

/// Whether a block is large enough to hold a whole huge page.
fn is_huge(size: usize) -> bool {
    size >= 2 * HUGE_PAGE
}

/// Asks the kernel to back the whole 2 MiB pages inside a large block with
/// huge pages (`MADV_HUGEPAGE`, which most distributions' default `madvise`
/// mode of transparent huge pages waits for). A large file's input, output
/// and per-value lists are such blocks, and touching them 4 KiB at a time
/// costs a page fault each: about 10,000 of the 14,500 faults of a `set`
/// in an 11.5 MB file. The block's use is unchanged; at most the last
/// huge page is filled before it is needed. Returns `block`.
///
/// `block` must be null or a live block of `size` bytes.
fn in_huge_pages(block: *mut u8, size: usize) -> *mut u8 {
    if is_huge(size) && !block.is_null() {
        let at = block as usize;
        advise(
            at.next_multiple_of(HUGE_PAGE),
            (at + size) / HUGE_PAGE * HUGE_PAGE,
        );
    }
    block
}

/// How far glibc's main heap, which grows with `brk`, has been advised
/// (0 until [`prepare_heap`] runs).
static ADVISED_BREAK: AtomicUsize = AtomicUsize::new(0);

/// Below this address nothing is in the main heap: the break when
/// [`prepare_heap`] ran, less what glibc may have taken before it.
static MAIN_HEAP_FLOOR: AtomicUsize = AtomicUsize::new(0);

/// The size and alignment of the heaps glibc gives threads other than the
/// main one (`HEAP_MAX_SIZE` on 64-bit targets): each is one mapping.
const THREAD_HEAP: usize = 64 << 20;

/// Thread heaps already advised (their start addresses).
static ADVISED_THREAD_HEAPS: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

/// Advises huge pages for the heap a new block came from, where that heap
/// grew since the last call: a large file's tree is 60,000 small blocks,
/// faulted in 4 KiB at a time otherwise.
///
/// - The main heap grows with `brk` (in 32 MiB steps, see
///   [`prepare_heap`]); what it grew by is advised. Reading the break
///   costs no system call.
/// - A small block elsewhere is in the calling thread's heap, which glibc
///   maps as one reservation of [`THREAD_HEAP`] bytes at an address aligned
///   to its size; it is advised whole, once.
fn advise_heap(block: *mut u8, size: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let advised = ADVISED_BREAK.load(Relaxed);
    if cfg!(not(target_env = "gnu")) || advised == 0 || block.is_null() {
        return;
    }
    // SAFETY: `sbrk(0)` only reads the current break.
    let now = unsafe { libc::sbrk(0) } as usize;
    let at = block as usize;
    if (MAIN_HEAP_FLOOR.load(Relaxed)..now).contains(&at) {
        if now > advised
            && ADVISED_BREAK
                .compare_exchange(advised, now, Relaxed, Relaxed)
                .is_ok()
        {
            advise(
                advised.next_multiple_of(HUGE_PAGE),
                now / HUGE_PAGE * HUGE_PAGE,
            );
        }
        return;
    }
    // Larger blocks may be mappings of their own.
    if size >= 64 << 10 {
        return;
    }
    let base = at & !(THREAD_HEAP - 1);
    // Read-only while the heap is known: a write would move the cache
    // line between the cores on every allocation.
    for slot in &ADVISED_THREAD_HEAPS {
        match slot.load(Relaxed) {
            seen if seen == base => return,
            0 => match slot.compare_exchange(0, base, Relaxed, Relaxed) {
                Ok(_) => return advise(base, base + THREAD_HEAP),
                Err(seen) if seen == base => return,
                Err(_) => {}
            },
            _ => {}
        }
    }
}

/// Asks for huge pages from `start` to `end` (a no-op when empty).
fn advise(start: usize, end: usize) {
    if end > start {
        // SAFETY: callers pass memory of a live block or of one of the
        // heap's mappings; the advice only changes how the kernel backs
        // it (failure changes nothing).
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Prepares the system allocator for large files; call before starting
/// any thread.
///
/// - glibc takes memory from the kernel in steps of 32 MiB instead of a
///   page or two at a time: on a large file every core builds part of a
///   tree, and glibc grew each thread's heap one `mprotect` call per page
///   it outgrew (about 2,000 calls and 10 ms for a 10 MB file). The steps
///   are only reserved address space.
/// - The heaps' growth from here on is advised huge pages (see
///   [`advise_heap`]).
/// - glibc's fast bins are turned off (`M_MXFAST` 0). They keep small
///   freed blocks apart, unmerged, until a larger request merges them
///   all at once; a large file's pieces each free tens of thousands of
///   small blocks and then ask for a few large ones, so every piece paid
///   for that merge (a sixth of `edit`'s re-encryption went to the
///   allocator). Freed blocks still go to each thread's cache first.
///   `edit` of a 60,000-value YAML file after the editor: 56.8 -> 51.0 ms;
///   `set` and `encrypt` 3-5% faster, decrypt unchanged.
pub fn prepare_heap() {
    use std::sync::atomic::Ordering::Relaxed;
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only changes a tuning parameter of glibc's malloc;
    // `sbrk(0)` only reads the current break.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 32 << 20);
        libc::mallopt(libc::M_MXFAST, 0);
        let now = libc::sbrk(0) as usize;
        MAIN_HEAP_FLOOR.store(now.saturating_sub(16 << 20), Relaxed);
        ADVISED_BREAK.store(now, Relaxed);
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

    #[test]
    fn large_blocks_come_zeroed_and_keep_contents_when_grown() {
        let alloc = WipeOnFree;
        let layout = Layout::from_size_align(5 * HUGE_PAGE + 3, 8).unwrap();
        unsafe {
            let block = alloc.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert!((0..layout.size()).all(|i| *block.add(i) == 0));
            *block.add(layout.size() - 1) = 7;
            let grown = alloc.realloc(block, layout, 6 * HUGE_PAGE);
            assert_eq!(*grown.add(layout.size() - 1), 7);
            alloc.dealloc(grown, Layout::from_size_align(6 * HUGE_PAGE, 8).unwrap());
        }
    }
}

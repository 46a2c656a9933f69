//! Hands the allocator's free memory back to the operating system when the daemon goes idle.
//!
//! A round allocates and frees a few megabytes (response bodies, evaluation, the baseline when
//! it is loaded). glibc's allocator gives back only the free memory at the top of a heap; the
//! rest stays resident between rounds, interleaved with the little that lives on (the monitor,
//! pooled connections). `malloc_trim(0)` returns the whole free pages inside every arena's heaps
//! (`madvise(MADV_DONTNEED)`, glibc ≥ 2.8, malloc_trim(3)), which is most of the difference
//! between a daemon that just finished a round and one that has only its state: about 0.9 MB
//! of 4.7 MB of anonymous memory measured with a baseline of 10 probes × 80 samples
//! (BENCHMARKS.md, "Daemon idle footprint"). It walks the free lists, well under a millisecond
//! for heaps of this size, once per round. Other C libraries (musl, macOS) have no such call
//! and keep their own policy: there it does nothing.

/// Returns free heap pages to the operating system; a no-op where the C library has no
/// `malloc_trim`.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's `malloc_trim` takes no pointers and only reorganises the allocator's
        // free lists under the allocator's own locks; any thread may call it at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Resident anonymous memory of this process, in kB (`RssAnon` of /proc/self/status).
    fn rss_anon_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Memory freed in the middle of a heap stays resident until trimmed: 32 MB of 64 kB
    /// blocks (below the mmap threshold, so they come from the heap), each followed by a 4 kB
    /// block that stays alive (above the sizes the allocator's per-thread caches serve, so it
    /// comes from the heap too) so that nothing merges into the heap's top, are freed; the free
    /// leaves them resident, the trim gives at least half of them back.
    #[test]
    fn free_pages_inside_the_heap_go_back_to_the_system() {
        const BLOCK: usize = 64 * 1024;
        const BLOCKS: usize = 512;
        let start = rss_anon_kb();
        let mut big = Vec::with_capacity(BLOCKS);
        let mut keep = Vec::with_capacity(BLOCKS);
        for i in 0..BLOCKS {
            // Written, so that the pages are resident.
            big.push(vec![(i % 251) as u8 + 1; BLOCK]);
            keep.push(vec![i as u8; 4096]);
        }
        let touched = big.iter().map(|b| u64::from(b[BLOCK - 1])).sum::<u64>();
        assert!(touched > 0);
        let allocated = rss_anon_kb();
        drop(big);
        let before = rss_anon_kb();
        release_free_memory();
        let after = rss_anon_kb();
        let given_back = before.saturating_sub(after);
        assert!(
            given_back >= (BLOCK * BLOCKS / 2 / 1024) as u64,
            "{given_back} kB given back by the trim (RssAnon {start} kB at start, {allocated} kB \
             allocated, {before} kB freed, {after} kB trimmed)"
        );
        assert_eq!(keep.len(), BLOCKS);
    }
}

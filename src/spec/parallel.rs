//! Spreading the per-entry work of a large spec over the machine's cores.
//!
//! A spec with tens of thousands of tokens is parsed and deserialized entry by entry, and the
//! entries do not depend on each other, so a large list is cut into one contiguous slice per
//! core and each slice is worked on in a scoped thread. Results come back in the order of the
//! slices, so what a caller assembles (entries, diagnostics) is exactly what one thread would
//! have produced. Small inputs stay on the calling thread: a thread costs more than a few
//! hundred entries do.

use std::sync::OnceLock;

/// The cores this process may use (at least 1), asked once: the answer reads cgroup files.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `work` applied to contiguous slices of `items`, one per core but none shorter than
/// `min_per_slice`; the results in slice order. A panic in a slice is resumed on the caller.
pub fn by_slices<T, R, F>(items: &[T], min_per_slice: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> R + Sync,
{
    let slices = cores().min(items.len() / min_per_slice.max(1)).max(1);
    if slices == 1 {
        return vec![work(items)];
    }
    let size = items.len().div_ceil(slices);
    let work = &work;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(size);
        let first = parts.next().unwrap_or(&[]);
        let others: Vec<_> = parts.map(|part| scope.spawn(move || work(part))).collect();
        let mut results = Vec::with_capacity(slices);
        results.push(work(first));
        for handle in others {
            match handle.join() {
                Ok(result) => results.push(result),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_item_once_in_order() {
        let items: Vec<usize> = (0..10_007).collect();
        let parts = by_slices(&items, 100, |part| part.to_vec());
        assert_eq!(parts.len(), cores().min(100));
        assert_eq!(parts.concat(), items);
        assert_eq!(by_slices(&items[..50], 100, <[usize]>::len), vec![50]);
        assert_eq!(
            by_slices::<usize, usize, _>(&[], 100, <[usize]>::len),
            vec![0]
        );
    }
}

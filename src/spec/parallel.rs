//! Spreading the per-entry work of a large spec over the machine's cores.
//!
//! A spec with tens of thousands of tokens is parsed and deserialized entry by entry, and the
//! entries do not depend on each other, so a large list is cut into contiguous chunks that
//! scoped threads (one per core) take in turn. Results come back in the order of the chunks, so
//! what a caller assembles (entries, diagnostics) is exactly what one thread would have
//! produced. Small inputs stay on the calling thread: a thread costs more than a few hundred
//! entries do.

use std::sync::OnceLock;

/// The cores this process may use (at least 1), asked once: the answer reads cgroup files.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Drops `value` on a thread of its own when `large`, here otherwise. Freeing the tree, entries
/// and tokens of a spec with tens of thousands of tokens takes tens of milliseconds that the
/// caller need not wait for: a command that is about to exit does not wait for the thread.
pub fn drop_off_thread<T: Send + 'static>(value: T, large: bool) {
    if large {
        std::thread::spawn(move || drop(value));
    } else {
        drop(value);
    }
}

/// `work` applied to contiguous chunks of `items` of `chunk` items each (the last may be
/// shorter); the results in chunk order. The chunks are shared out as threads become free, one
/// thread per core at most, so a thread that meets slower items does not hold up the rest. A
/// single chunk is worked on by the calling thread. A panic in a chunk is resumed on the
/// caller.
pub fn by_chunks<T, R, F>(items: &[T], chunk: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> R + Sync,
{
    let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
    let threads = cores().min(chunks.len());
    if chunks.is_empty() {
        // An empty input is one empty chunk, as a one-thread caller would see it.
        return vec![work(items)];
    }
    if threads <= 1 {
        return chunks.into_iter().map(work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(chunk) = chunks.get(i) else {
                return done;
            };
            done.push((i, work(chunk)));
        }
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut all = worker();
        for handle in others {
            match handle.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_once_in_order() {
        let items: Vec<usize> = (0..10_007).collect();
        let parts = by_chunks(&items, 100, |part| part.to_vec());
        assert_eq!(parts.len(), 101);
        assert_eq!(parts.concat(), items);
        // Uneven work: results still come back in order.
        let slow = by_chunks(&items, 1_000, |part| {
            if part[0] == 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            part[0]
        });
        assert_eq!(slow, (0..11).map(|i| i * 1_000).collect::<Vec<_>>());
        assert_eq!(by_chunks(&items[..50], 100, <[usize]>::len), vec![50]);
        assert_eq!(
            by_chunks::<usize, usize, _>(&[], 100, <[usize]>::len),
            vec![0]
        );
    }
}

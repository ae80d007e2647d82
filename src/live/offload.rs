//! Decoding big answers off the task that reads them.
//!
//! [`read_snapshot`](super::read_snapshot) reads every environment from one task, so whatever
//! its futures compute runs on one thread at a time. Parsing a page of thousands of tokens and
//! turning it into model values is CPU work that would otherwise keep a whole fleet's reads on
//! one core; [`offload`] hands such work to tokio's blocking pool, where the pages of several
//! environments are decoded at once. Small answers (almost every call) stay inline: moving them
//! would cost more than it saves.

/// A body at least this large is decoded on the blocking pool (about 400 API tokens).
pub const HEAVY_BODY_BYTES: usize = 64 * 1024;
/// A list at least this long is converted to model values on the blocking pool.
pub const HEAVY_LIST_LEN: usize = 400;

/// Run `work` on tokio's blocking pool when `heavy`, inline otherwise. A panic in `work` is
/// resumed here, as if it had run inline.
pub async fn offload<R: Send + 'static>(
    heavy: bool,
    work: impl FnOnce() -> R + Send + 'static,
) -> R {
    if !heavy {
        return work();
    }
    begin(work).finish().await
}

/// Start `work` on the blocking pool now, to be awaited later with [`Pending::finish`]: a page
/// is decoded while the next one is fetched.
pub fn begin<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Pending<R> {
    Pending(tokio::task::spawn_blocking(work))
}

/// Work started by [`begin`].
#[must_use = "the work's result is only seen by awaiting `finish`"]
pub struct Pending<R>(tokio::task::JoinHandle<R>);

impl<R> Pending<R> {
    /// The work's result. A panic in the work is resumed here, as if it had run inline.
    pub async fn finish(self) -> R {
        match self.0.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime that is shutting down cancels a blocking task; nothing awaits us
            // then.
            Err(e) => panic!("decoding was cancelled: {e}"),
        }
    }
}

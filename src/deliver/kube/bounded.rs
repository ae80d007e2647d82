//! Bounds on what a Kubernetes API server can make a delivery wait for or hold in memory.
//!
//! kube-rs reads every answer whole, and its read timeout starts again with every byte that
//! arrives: an API server (or whatever answers for its address) that drips an answer a byte at
//! a time, or streams one without end, would hold the apply and its lock for ever, or fill the
//! memory. This layer, added on top of kube-rs's own stack, gives each request one deadline for
//! its whole answer (headers and body together) and refuses a body larger than a cap, and runs
//! the request on a runtime of its own, where an exec plugin that kube-rs runs synchronously to
//! refresh a token cannot block the caller past the deadline. The errors name what happened;
//! the connection code adds the context and the server.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest answer read from an API server. A Secret is at most 1 MiB (etcd's limit); the
/// objects tokensmith reads are a Secret, a DynaKube, a workload or a review.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The limits of one client: each answer's deadline and the largest body.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub deadline: Duration,
    pub max_body: usize,
}

/// What the bounds refused.
#[derive(Debug)]
pub enum Exceeded {
    Deadline(Duration),
    Body(usize),
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exceeded::Deadline(d) => write!(
                f,
                "the API server did not finish its answer within {} s (--kube-timeout)",
                d.as_secs_f64()
            ),
            Exceeded::Body(limit) => write!(
                f,
                "the API server's answer is larger than {} MiB, more than any object tokensmith reads",
                limit >> 20
            ),
        }
    }
}

impl std::error::Error for Exceeded {}

impl Exceeded {
    /// The bound a kube-rs error reports, if that is what it is.
    pub fn in_chain<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e Exceeded> {
        let mut source = Some(e);
        while let Some(s) = source {
            if let Some(x) = s.downcast_ref::<Exceeded>() {
                return Some(x);
            }
            source = s.source();
        }
        None
    }
}

/// The tower layer that applies [`Bounds`] to every request of a kube-rs client.
#[derive(Debug, Clone, Copy)]
pub struct BoundsLayer(pub Bounds);

impl<S> Layer<S> for BoundsLayer {
    type Service = Bounded<S>;

    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded {
            inner,
            bounds: self.0,
        }
    }
}

/// A service whose answers are bounded; see [`BoundsLayer`].
#[derive(Debug, Clone)]
pub struct Bounded<S> {
    inner: S,
    bounds: Bounds,
}

/// The runtime every request of a Kubernetes client runs on. kube-rs refreshes an exec plugin's
/// expiring token inside a request, running the plugin synchronously, so a plugin that hangs
/// there blocks the thread that polls the request. Here that is one of this runtime's threads,
/// not the apply's, and the caller's deadline still ends the wait. It is never dropped, so a
/// thread still blocked on a plugin does not hold up the end of the process.
fn requests_runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("kube-requests")
                .enable_all()
                .build()
                .expect("a runtime for Kubernetes requests can be started")
        })
        .handle()
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for Bounded<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<BoxError> + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoundedBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let bounds = self.bounds;
        let deadline = Instant::now() + bounds.deadline;
        let answer = self.inner.call(request);
        let mut running = requests_runtime().spawn(answer);
        Box::pin(async move {
            let joined = match tokio::time::timeout_at(deadline, &mut running).await {
                Ok(joined) => joined,
                Err(_) => {
                    running.abort();
                    return Err(Exceeded::Deadline(bounds.deadline).into());
                }
            };
            let response = joined.map_err(BoxError::from)?.map_err(Into::into)?;
            Ok(response.map(|inner| BoundedBody {
                inner,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                bounds,
                left: bounds.max_body,
            }))
        })
    }
}

/// A response body that ends in an error at the request's deadline or past the size cap.
pub struct BoundedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    bounds: Bounds,
    left: usize,
}

impl<B> Body for BoundedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                if len > this.left {
                    return Poll::Ready(Some(Err(Exceeded::Body(this.bounds.max_body).into())));
                }
                this.left -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(Exceeded::Deadline(this.bounds.deadline).into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that yields `chunks` frames of `size` bytes, then waits for ever.
    struct Endless {
        chunks: usize,
        size: usize,
    }

    impl Body for Endless {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.chunks == 0 {
                return Poll::Pending;
            }
            self.chunks -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; self.size])))))
        }
    }

    fn bounded(chunks: usize, size: usize, max_body: usize) -> BoundedBody<Endless> {
        let deadline = Duration::from_millis(200);
        BoundedBody {
            inner: Endless { chunks, size },
            deadline: Box::pin(tokio::time::sleep(deadline)),
            bounds: Bounds { deadline, max_body },
            left: max_body,
        }
    }

    async fn collect(mut body: BoundedBody<Endless>) -> Result<usize, String> {
        let mut n = 0;
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                Some(Ok(f)) => n += f.data_ref().map_or(0, Bytes::len),
                Some(Err(e)) => return Err(format!("{e} after {n}")),
                None => return Ok(n),
            }
        }
    }

    #[tokio::test]
    async fn a_body_up_to_the_cap_is_read_and_one_byte_more_is_refused() {
        let at_cap = collect(bounded(4, 256, 1024)).await.unwrap_err();
        assert_eq!(
            at_cap,
            "the API server did not finish its answer within 0.2 s (--kube-timeout) after 1024"
        );
        let over = collect(bounded(5, 256, 1024)).await.unwrap_err();
        assert!(
            over.starts_with("the API server's answer is larger than"),
            "{over}"
        );
        assert!(over.ends_with("after 1024"), "{over}");
    }
}
